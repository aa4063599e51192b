"""WaveGrad 2 through the generic CLIs: tiny config, internal aligner, exact resume, 6/50-step inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from bins import infer, train
from models.base import checkpoint as ckpt
from models.tts.wavegrad2.dataset import WaveGrad2Dataset, collate_wavegrad2, fit_durations, speaker_index
from models.tts.wavegrad2.config import WaveGrad2DataConfig
from models.tts.wavegrad2 import schedule_search
from models.tts.wavegrad2.inference import WaveGrad2TTS
from modules.diffusion import NoiseSchedule, linear_betas
from processors.data.manifest import ManifestEntry, write_manifest
from tests.helpers import REPO_ROOT

TINY = REPO_ROOT / "models/tts/wavegrad2/configs/tiny.json5"
TEXTS = ["A cat sat.", "Dogs run far.", "We see the sun.", "Hello there."]
SMALL = ["model.window_frames=8", "train.tensorboard=false", "train.batch_size=2", "train.log_every=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four short tone clips (16 kHz, resampled to 24 kHz by the loader) with transcripts."""
    root = tmp_path_factory.mktemp("wg2_corpus")
    rng = np.random.default_rng(0)
    entries = []
    for index, text in enumerate(TEXTS):
        seconds = 0.8 + 0.1 * index
        t = np.arange(int(seconds * 16000)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (150 + 40 * index) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        wav = (wav + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        path = root / f"utt{index}.wav"
        sf.write(path, wav, 16000)
        entries.append(ManifestEntry(f"utt{index}", str(path), "spk", text, seconds, 16000))
    return write_manifest(entries, root / "train.jsonl")


def _weights(exp):
    return ckpt.load_model_weights(ckpt.resolve_checkpoint_dir(exp), "model")


def test_train_resume_exact_then_infer(tmp_path, corpus):
    def run(exp, *args):
        flags = [a for a in args if a.startswith("--")]
        overrides = [a for a in args if not a.startswith("--")]
        return train.main(["--config", str(TINY), "--exp_dir", str(exp), *flags, f"data.train_manifest={corpus}",
                           *SMALL, *overrides])

    full = tmp_path / "full"
    assert run(full, "train.max_steps=4") == 0
    log = [json.loads(line) for line in (full / "train_log.jsonl").read_text().splitlines()]
    assert {"loss_l1", "loss_duration", "loss_aligner"} <= set(log[0]) and len(log) == 4

    part = tmp_path / "part"
    assert run(part, "train.max_steps=2", "train.save_every=2") == 0
    assert run(part, "train.max_steps=4", "--resume") == 0
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resume is not exact"

    out = tmp_path / "out"
    rc = infer.main(["--ckpt_dir", str(full), "--text", "A cat sat.", "--text", "  ", "--output_dir", str(out),
                     "--set", "infer.steps=6", "--seed", "3"])
    assert rc == 1  # the blank text failed
    wav, sr = sf.read(out / "tts_0000.wav")
    assert sr == 24000 and len(wav) % 300 == 0 and len(wav) > 0
    (bad_list,) = out.glob("bad_items_*.tsv")
    assert "tts_0001" in bad_list.read_text()

    schedule_file = tmp_path / "schedule_3.json"
    rc = schedule_search.main(["--ckpt_dir", str(full), "--manifest", str(corpus), "--steps", "3", "--output",
                               str(schedule_file), "--max_items", "2", "--first_betas", "1e-4,1e-3,0.5",
                               "--penultimate_betas", "0.05,0.3"])
    assert rc == 0
    saved = json.loads(schedule_file.read_text())
    assert len(saved["betas"]) == 3 and saved["score"] == min(c["score"] for c in saved["candidates"])
    assert len(saved["candidates"]) == 4  # first beta 0.5 is not below the penultimate ones
    floor = float(NoiseSchedule.from_betas(linear_betas(1000)).noise_levels[-1])
    for cand in saved["candidates"]:  # every candidate starts where training's noise levels end
        assert float(NoiseSchedule.from_betas(cand["betas"]).noise_levels[-1]) == pytest.approx(floor, rel=1e-3)
    searched = WaveGrad2TTS.from_checkpoint(full, schedule=str(schedule_file))
    assert searched.schedule.betas.tolist() == pytest.approx(saved["betas"])
    assert len(searched.synthesize(["Dogs run far."], seed=2)[0].waveform) % 300 == 0

    assert infer.main(["--ckpt_dir", str(full), "--text", "Hi.", "--output_dir", str(out), "--set",
                       "model.factors=[2]"]) == 2  # inference settings only: one line, infer.KEY=VALUE

    tts = WaveGrad2TTS.from_checkpoint(full, steps=50)
    assert tts.schedule.steps == 50 and tts.capabilities.tasks == frozenset({"tts"})
    one, two = tts.synthesize(["A cat sat."], seed=1)[0], tts.synthesize(["A cat sat."], seed=1)[0]
    assert np.array_equal(one.waveform, two.waveform) and one.sample_rate == 24000
    assert len(one.waveform) % 300 == 0 and np.abs(one.waveform).max() <= 1.0


def test_dataset_skips_and_manifest_durations(tmp_path, corpus):
    data = WaveGrad2DataConfig(train_manifest=str(corpus), durations="manifest")
    entries = [ManifestEntry("u0", str(corpus.parent / "utt0.wav"), "spk", "A cat sat.", 0.8, 16000),
               ManifestEntry("u1", str(corpus.parent / "utt1.wav"), "spk", "Dogs run far.", 0.9, 16000),
               ManifestEntry("u2", str(corpus.parent / "utt2.wav"), "spk", "   ", 1.0, 16000)]
    ids_len = len(__import__("processors.text.frontend", fromlist=["TextFrontend"]).TextFrontend(add_blank=False)(
        "A cat sat.")["ids"])
    entries[0].extra = {"durations": [64 // ids_len] * (ids_len - 1) + [64 - (64 // ids_len) * (ids_len - 1)]}
    entries[1].extra = {"durations": [1, 2]}  # wrong count
    ds = WaveGrad2Dataset(entries, data, 24000, 300, 0)
    reasons = dict(ds.skipped)
    assert len(ds) == 1 and "durations for" in reasons["u1"] and "u2" in reasons
    item = ds[0]
    assert item["wav"].numel() == 64 * 300 and float(item["durations"].sum()) == 64
    batch = collate_wavegrad2([item, item])
    assert batch["durations"].shape == (2, ids_len) and batch["wav"].shape == (2, 64 * 300)
    assert speaker_index("b", ["a", "b"], 2) == 1 and speaker_index("1", [], 2) == 1 and speaker_index("x", [], 0) == 0
    with pytest.raises(ValueError, match="unknown speaker 'c'"):
        speaker_index("c", ["a", "b"], 2)
    assert fit_durations([3, 4, 2], 10) == [3, 4, 3] and fit_durations([3, 4, 2], 8) == [3, 4, 1]
    with pytest.raises(ValueError, match="sum to 9 frames but the audio has 20"):
        fit_durations([3, 4, 2], 20)
