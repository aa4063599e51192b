"""WaveGrad 2 through the generic CLIs: tiny config, internal aligner, duration batches, exact resume, 6/50-step
inference; the config-driven optimizer and schedule; durations from a manifest's ``extra``."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from bins import infer, train
from models.base import checkpoint as ckpt
from models.base.pipeline import load_pipeline
from models.base.sampler import DurationBatchSampler
from processors.data.manifest import speaker_index
from models.tts.wavegrad2.dataset import (WaveGrad2Dataset, collate_wavegrad2, fit_durations, load_datasets,
                                          manifest_durations)
from models.tts.wavegrad2.config import WaveGrad2DataConfig, WaveGrad2ExperimentConfig, WaveGrad2InferConfig
from models.tts.wavegrad2.trainer import WaveGrad2Trainer
from models.tts.wavegrad2 import schedule_search
from models.tts.wavegrad2.inference import WaveGrad2TTS
from modules.diffusion import NoiseSchedule, linear_betas, save_schedule
from processors.data.manifest import ManifestEntry, read_manifest, write_manifest
from processors.text.frontend import TextFrontend
from tests.helpers import REPO_ROOT
from utils.config import ConfigError, load_config, validate

TINY = REPO_ROOT / "models/tts/wavegrad2/configs/tiny.json5"
PAPER = REPO_ROOT / "models/tts/wavegrad2/configs/paper.json5"
TEXTS = ["A cat sat.", "Dogs run far.", "We see the sun.", "Hello there."]
# clips of 0.8-1.1 s: two buckets of two items, each pair fits 2.4 padded seconds -> 2 batches of 2 per epoch
SMALL = ["model.window_frames=8", "train.tensorboard=false", "train.batching.max_seconds=2.4",
         "train.batching.buckets=2", "train.log_every=1"]


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


def test_train_resume_exact_then_infer(tmp_path, corpus, capsys):
    def run(exp, *args):
        flags = [a for a in args if a.startswith("--")]
        overrides = [a for a in args if not a.startswith("--")]
        return train.main(["--config", str(TINY), "--exp_dir", str(exp), *flags, f"data.train_manifest={corpus}",
                           *SMALL, *overrides])

    full = tmp_path / "full"
    assert run(full, "train.max_steps=4") == 0
    log = [json.loads(line) for line in (full / "train_log.jsonl").read_text().splitlines()]
    assert {"loss_l1", "loss_duration", "loss_aligner"} <= set(log[0]) and len(log) == 4

    meta = json.loads((ckpt.resolve_checkpoint_dir(full) / "meta.json").read_text())
    assert meta["frozen"] == {"mel": {"kind": "code"}}  # the aligner's mel front end: frozen, not saved
    assert not any("mel" in key for key in _weights(full)) and "mel" not in json.dumps(meta["files"])

    part = tmp_path / "part"  # interrupted in the middle of the second epoch (2 duration batches per epoch)
    assert run(part, "train.max_steps=3", "train.save_every=3") == 0
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
    for bad, key in ((["--set", "infer.steps=0"], "infer.steps"), (["--schedule", str(tmp_path / "no.json")],
                                                                 "infer.schedule")):  # typed settings, checked
        capsys.readouterr()
        assert infer.main(["--ckpt_dir", str(full), "--text", "Hi.", "--output_dir", str(tmp_path / "o2"), *bad]) == 2
        assert key in capsys.readouterr().err
    piped = load_pipeline(full, overrides=[f"infer.schedule={schedule_file}"])  # the registered pipeline
    assert isinstance(piped, WaveGrad2TTS) and piped.schedule.betas.tolist() == pytest.approx(saved["betas"])
    spec = {"pipeline": "wavegrad2", "components": {"model": str(full)}, "infer": {"steps": 50, "length_scale": 1.2}}
    assert load_pipeline(spec).schedule.steps == 50 and load_pipeline(spec).settings.length_scale == 1.2

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


def test_trainer_batches_by_duration_with_a_frozen_mel(tmp_path, corpus):
    raw = load_config(TINY, [f"data.train_manifest={corpus}", *SMALL])
    trainer = WaveGrad2Trainer(validate(raw, WaveGrad2ExperimentConfig), tmp_path / "exp", cpu=True)
    assert isinstance(trainer.sampler, DurationBatchSampler)
    seconds = dict(zip([it[0] for it in trainer.train_set.items], trainer.train_set.durations()))
    assert seconds == pytest.approx({"utt0": 0.8, "utt1": 0.9, "utt2": 1.0, "utt3": 1.1})
    batches = sorted(sorted(trainer.train_set.items[i][0] for i in batch) for batch in trainer.sampler)
    assert batches == [["utt0", "utt1"], ["utt2", "utt3"]]
    assert "mel" not in trainer.models and not trainer.frozen_modules["mel"].training


def test_paper_optimizer_and_schedule_are_maums():
    """Adam 3e-4 (betas 0.9/0.999, eps 1e-8, weight decay 1e-6) and lr x 0.05^clip((k - 25k) / 75k, 0, 1)."""
    assert "build_optimizers" not in vars(WaveGrad2Trainer) and "build_schedulers" not in vars(WaveGrad2Trainer)
    cfg = validate(load_config(PAPER), WaveGrad2ExperimentConfig)
    assert cfg.train.scheduler_interval == "step" and cfg.train.batching.type == "duration"
    view = SimpleNamespace(train_cfg=cfg.train)
    opts = WaveGrad2Trainer.build_optimizers(view, {"model": torch.nn.Linear(3, 2)})
    sched = WaveGrad2Trainer.build_schedulers(view, opts)["model"]
    group = opts["model"].param_groups[0]
    assert type(opts["model"]) is torch.optim.Adam
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (3e-4, (0.9, 0.999), 1e-8, 1e-6)
    steps = list(range(0, 150001, 500)) + [25001, 99999]
    got = [3e-4 * sched.lr_lambdas[0](k) for k in steps]
    maum = [3e-4 * 0.05 ** min(1.0, max(0.0, (k - 25000) / 75000)) for k in steps]
    assert got == pytest.approx(maum, rel=1e-12, abs=0)
    for k in range(3):  # and the optimizer really follows it (flat before 25k)
        assert group["lr"] == pytest.approx(3e-4, rel=1e-12)
        opts["model"].step()
        sched.step()
    assert math.isclose(3e-4 * sched.lr_lambdas[0](100000), 1.5e-5, rel_tol=1e-12)


def test_manifest_extra_durations_round_trip(tmp_path, corpus):
    """Per-phoneme durations written into a manifest file's ``extra`` reach the dataset, at the model's hop or
    converted from another frame length (``extra["frame_seconds"]``, e.g. a 10 ms aligner)."""
    n = len(TextFrontend(add_blank=False)("A cat sat.")["ids"])
    frames = 64  # utt0: 0.8 s at 24 kHz / hop 300
    at_hop = [frames // n] * (n - 1) + [frames - (frames // n) * (n - 1)]
    in_10ms = [d * 1.25 for d in at_hop]  # 12.5 ms frames -> 10 ms frames
    wav = str(corpus.parent / "utt0.wav")
    rows = [ManifestEntry("hop", wav, "spk", "A cat sat.", 0.8, 16000, {"durations": at_hop}),
            ManifestEntry("ms10", wav, "spk", "A cat sat.", 0.8, 16000, {"durations": in_10ms, "frame_seconds": 0.01}),
            ManifestEntry("none", wav, "spk", "A cat sat.", 0.8, 16000)]
    path = write_manifest(rows, tmp_path / "aligned.jsonl")
    assert read_manifest(path)[1].extra == {"durations": in_10ms, "frame_seconds": 0.01}
    train, _ = load_datasets(WaveGrad2DataConfig(train_manifest=str(path), durations="manifest"), 24000, 300, 0)
    assert [it[0] for it in train.items] == ["hop", "ms10"] and "extra['durations']" in dict(train.skipped)["none"]
    for index in range(2):
        assert train[index]["durations"].tolist() == at_hop
    # 10 ms -> 12.5 ms on cumulative boundaries: 30/60/90 ms end at frames round(2.4, 4.8, 7.2) = 2, 5, 7
    row = ManifestEntry("x", wav, "", "", 0.1, 16000, {"durations": [3, 3, 3], "frame_seconds": 0.01})
    assert manifest_durations(row, 0.0125) == [2.0, 3.0, 2.0]


def test_inference_settings_are_checked_when_set(tmp_path):
    """``infer.steps`` / ``infer.schedule`` / ``infer.length_scale`` fail as one line naming the key, before any
    model runs."""
    for bad, needle in [({"steps": 0}, "infer.steps"), ({"length_scale": 0.0}, "infer.length_scale"),
                        ({"schedule": str(tmp_path / "gone.json")}, "infer.schedule"),
                        ({"schedule": "fast_7"}, "fast_6")]:  # the message lists the presets
        with pytest.raises(ConfigError, match=needle):
            validate(bad, WaveGrad2InferConfig, "infer")
    schedule_file = save_schedule(tmp_path / "s.json", [1e-4, 0.1, 0.5])
    assert validate({"schedule": str(schedule_file)}, WaveGrad2InferConfig, "infer").schedule == str(schedule_file)
    assert validate({"steps": 3, "schedule": "gone.json"}, WaveGrad2InferConfig, "infer").steps == 3  # steps win


def test_piper_framed_manifest_row_trains_on_our_phonemes(corpus, tmp_path):
    cleaned = TextFrontend(add_blank=False)("The kettle is hot.")["cleaned"]
    assert "ɑː" in cleaned
    row_phonemes = cleaned.replace("ɑː", "ɒ")  # another front end's reading of one vowel
    n = len(row_phonemes)
    # ^ = 1, leading _ = 0, each phoneme 2 (the 'ɒ' 3), each trailing _ 1, $ = 9 (utt0: 64 frames of 12.5 ms)
    ids = [1, 0] + [f for ch in row_phonemes for f in ((3 if ch == "ɒ" else 2), 1)] + [64 - 2 * n - n - 2]
    extra = {"phonemes": row_phonemes, "phoneme_ids": list(range(len(ids))), "durations": ids,
             "frame_seconds": 0.0125, "voice": "piper-like"}
    path = write_manifest([ManifestEntry("p0", str(corpus.parent / "utt0.wav"), "piper", "The kettle is hot.", 0.8,
                                         16000, extra)], tmp_path / "piper.jsonl")
    train, _ = load_datasets(WaveGrad2DataConfig(train_manifest=str(path), durations="manifest"), 24000, 300, 0)
    got = train[0]["durations"].tolist()
    expected = [2.0 if ch in "ɑː" else 3.0 for ch in cleaned]
    expected[0] += 1  # ^
    expected[-1] += ids[-1]  # $
    assert got == expected and sum(got) == 64
