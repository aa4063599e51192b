"""toy_tts, the smallest TTS family, through the generic CLIs: train, resume exactly, synthesise, load.

The corpus: four short "utterances" whose phoneme durations are known (each phoneme a steady two-tone chord of
its own pitch for its frames), written as manifest rows with ``extra.durations`` (processors/data/durations.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from bins import infer, train
from evaluation.benchmark.discover import discover_systems
from evaluation.benchmark.systems import load_system
from models.base import checkpoint as ckpt
from models.base.pipeline import load_pipeline
from models.base.tasks import TextToSpeech
from processors.data.manifest import ManifestEntry, write_manifest
from processors.text.frontend import TextFrontend
from tests.helpers import REPO_ROOT

CONFIG = REPO_ROOT / "models/example/toy_tts/configs/mini.json5"
TEXTS = ["A cat sat.", "Dogs run far.", "We see the sun.", "Hello there."]
SR, HOP = 22050, 256


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_tts_corpus")
    rng = np.random.default_rng(0)
    frontend = TextFrontend(add_blank=False)
    rows = []
    for n, text in enumerate(TEXTS):
        ids = frontend(text)["ids"]
        frames = rng.integers(2, 6, len(ids)).tolist()
        t = np.arange(HOP) / SR
        wav = np.concatenate([np.tile(0.3 * np.sin(2 * np.pi * (100 + 4 * i) * t) + 0.1 * np.sin(2 * np.pi * 3000 * t),
                                      f) for i, f in zip(ids, frames)]).astype(np.float32)
        path = root / f"utt{n}.wav"
        sf.write(path, wav, SR)
        rows.append(ManifestEntry(f"utt{n}", str(path), "toy", text, len(wav) / SR, SR,
                                  {"durations": frames, "hop_length": HOP}))
    write_manifest([ManifestEntry(r.id, r.path, r.speaker, r.text, r.duration, r.sample_rate) for r in rows],
                   root / "no_durations.jsonl")  # as the mini corpus: text and audio only
    return write_manifest(rows, root / "train.jsonl")


def run_train(exp, manifest, steps, *extra):
    args = ["--config", str(CONFIG), "--exp_dir", str(exp), "--cpu", *extra, f"data.train_manifest={manifest}",
            f"data.valid_manifest={manifest}", f"train.max_steps={steps}", "train.save_every=3"]
    assert train.main(args) == 0


def log_of(exp):
    return {r["step"]: r for r in map(json.loads, (exp / "train_log.jsonl").read_text().splitlines())
            if r["split"] == "train"}


def test_trains_resumes_exactly_synthesises_and_loads(tmp_path, manifest, capsys):
    run_train(tmp_path / "a", manifest, 6)
    run_train(tmp_path / "b", manifest, 3)
    run_train(tmp_path / "b", manifest, 6, "--resume")
    log_a, log_b = log_of(tmp_path / "a"), log_of(tmp_path / "b")
    assert sorted(log_a) == sorted(log_b) == list(range(1, 7))
    assert all(log_a[s]["mel_l1"] == log_b[s]["mel_l1"] for s in log_a)
    assert log_a[6]["mel_l1"] < log_a[1]["mel_l1"]  # it learns
    weights = [load_file(str(ckpt.resolve_checkpoint_dir(tmp_path / d) / "tts.safetensors")) for d in "ab"]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    out = tmp_path / "out"
    rc = infer.main(["--ckpt_dir", str(tmp_path / "a"), "--text", "A cat sat.", "!!!", "--output_dir", str(out),
                     "--griffin_lim_iters", "4"])
    assert rc == 1 and capsys.readouterr().out.strip().splitlines()[-1].startswith("1 written, 1 failed")
    wav, sr = sf.read(out / "tts_0000.wav")
    assert sr == SR and len(wav) > 0 and len(wav) % HOP == 0 and np.isfinite(wav).all()

    tts = load_pipeline(tmp_path / "a", ["infer.griffin_lim_iters=4"])
    assert isinstance(tts, TextToSpeech) and tts.capabilities.tasks == {"tts"} and not tts.capabilities.speakers
    first, again = tts.synthesize(["Dogs run far."], seed=3), tts.synthesize(["Dogs run far."], seed=3)
    assert np.array_equal(first[0].waveform, again[0].waveform) and first[0].sample_rate == SR
    batch = tts.synthesize(["A cat sat.", "Dogs run far."], seed=3)  # item k of a call == alone with item_seed
    assert np.array_equal(batch[1].waveform, tts.synthesize(["Dogs run far."], seed=tts.item_seed(3, 1))[0].waveform)
    assert not np.array_equal(batch[1].waveform, first[0].waveform)  # another seed: other Griffin-Lim phases
    with pytest.raises(ValueError, match="takes no audio prompt"):
        tts.synthesize(["Hi."], prompts=["x.wav"])
    with pytest.raises(ValueError, match="no speaker"):
        tts.synthesize(["Hi."], speakers=["joe"])
    systems = discover_systems(tmp_path, baselines=False).systems  # echelon-benchmark finds and loads both runs
    assert sorted(s.name for s in systems) == ["a", "b"]  # named after their folders when the type repeats
    assert load_system(systems[0].spec).capabilities.tasks == {"tts"}
    short = load_pipeline(tmp_path / "a", ["infer.griffin_lim_iters=4", "infer.max_sentence_chars=12"])
    two = short.synthesize(["A cat sat. Dogs run far."], seed=3)[0]  # a long text is spoken sentence by sentence
    pieces = [len(short.synthesize([t])[0].waveform) for t in ("A cat sat.", "Dogs run far.")]
    assert len(two.waveform) == sum(pieces) + round(0.3 * SR)  # joined with infer.pause_seconds of silence


def test_aligner_trains_on_rows_without_durations(tmp_path, manifest, capsys):
    """model.aligner (on in mini.json5, the recipe config): durations by alignment search on the mel."""
    plain = manifest.parent / "no_durations.jsonl"
    run_train(tmp_path / "e", plain, 6)
    log = log_of(tmp_path / "e")
    assert log[6]["prior_nll"] < log[1]["prior_nll"] and log[6]["mel_l1"] < log[1]["mel_l1"]
    out = load_pipeline(tmp_path / "e", ["infer.griffin_lim_iters=2"]).synthesize(["We see the sun."])[0]
    assert out.waveform.size > 0 and out.waveform.size % HOP == 0
    assert train.main(["--config", str(CONFIG), "--exp_dir", str(tmp_path / "f"), "--cpu",
                       f"data.train_manifest={plain}", "model.aligner=false", "train.max_steps=1"]) != 0
    assert "no usable row" in capsys.readouterr().err  # one line, no traceback
