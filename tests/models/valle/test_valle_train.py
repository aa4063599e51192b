"""Tiny VALL-E trained through the shared trainer on real clips of the mini corpus (codes of the tiny random
EnCodec): both losses fall, resume is exact, the saved checkpoint decodes through the registered inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.tts.valle.config import ValleExperimentConfig
from models.tts.valle.prepare import SYMBOLS, prepare
from models.tts.valle.trainer import ValleTrainer
from processors.data.manifest import read_manifest, write_manifest
from processors.data.preparers import prepare_mini
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("valle")
    prepare_mini(MINI_CORPUS, root / "manifests", seed=1, valid=0.0, test=0.0)
    train = [e for e in read_manifest(root / "manifests" / "train.jsonl") if e.text and e.duration <= 6.05]
    write_manifest(train, root / "train.jsonl")
    prepare([str(root / "train.jsonl")], root / "feats", "tiny-random")
    return root


def config(root, overrides=()):
    raw = load_config(REPO_ROOT / "models/tts/valle/configs/tiny.json5", [
        f"data.train_manifest={root / 'train.jsonl'}", f"data.features_dir={root / 'feats'}", *overrides,
    ])  # fmt: skip
    raw["data"]["symbols"] = json.loads((root / "feats" / SYMBOLS).read_text())
    return validate(raw, ValleExperimentConfig)


def test_both_losses_fall(features, tmp_path):
    cfg = config(features, ["train.max_steps=25", "train.save_every=0"])
    trainer = ValleTrainer(cfg, tmp_path / "exp", cpu=True)
    history = []
    original = trainer._after_step
    trainer._after_step = lambda values, bar: (history.append(values), original(values, bar))
    trainer.train()
    first = {k: sum(h[k] for h in history[:5]) / 5 for k in ("ar_loss", "nar_loss")}
    last = {k: sum(h[k] for h in history[-5:]) / 5 for k in ("ar_loss", "nar_loss")}
    print("losses first 5 / last 5 steps:", first, last)
    assert last["ar_loss"] < 0.8 * first["ar_loss"] and last["nar_loss"] < 0.85 * first["nar_loss"]


def test_resume_is_exact(features, tmp_path):
    straight = ValleTrainer(config(features, ["train.max_steps=4", "train.save_every=2"]), tmp_path / "a", cpu=True)
    straight.train()
    first = ValleTrainer(config(features, ["train.max_steps=2", "train.save_every=2"]), tmp_path / "b", cpu=True)
    first.train()
    resumed = ValleTrainer(config(features, ["train.max_steps=4", "train.save_every=2"]), tmp_path / "b", resume=True, cpu=True)
    assert resumed.step == 2
    resumed.train()
    for (name, a), (_, b) in zip(straight.unwrap("valle").state_dict().items(), resumed.unwrap("valle").state_dict().items()):
        assert torch.equal(a, b), name


def test_trained_checkpoint_through_echelon_infer_and_task_api(features, tmp_path):
    from bins.infer import main as infer_main
    from models.tts.valle.inference import ValleTTS

    exp = tmp_path / "exp"
    ValleTrainer(config(features, ["train.max_steps=2", "train.save_every=0", "decoding.max_frames_per_token=1"]), exp, cpu=True).train()
    a, b, c = read_manifest(features / "train.jsonl")[:3]  # texts the tiny symbol table covers
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in [
        {"id": "tts", "text": b.text, "prompt": a.path, "prompt_text": a.text},
        {"id": "cont", "text": c.text, "prompt": c.path, "continuation": True},
        {"id": "bad", "text": b.text, "prompt": str(tmp_path / "missing.wav"), "prompt_text": a.text},
    ]) + "\n")  # fmt: skip
    out = tmp_path / "out"
    assert infer_main(["--ckpt_dir", str(exp), "--jobs", str(jobs), "--output_dir", str(out), "--seed", "3"]) == 1
    assert sorted(p.name for p in out.glob("*.wav")) == ["cont.wav", "tts.wav"]
    (bad_list,) = out.glob("bad_items_*.tsv")  # one list per run; exit 1 because a job failed
    assert bad_list.read_text().splitlines()[1].startswith("bad\t")
    tts = ValleTTS.from_echelon(exp)
    assert tts.capabilities.audio_prompt and tts.capabilities.prompt_text and tts.capabilities.continuation
    run = lambda seed: tts.synthesize([b.text, c.text], [a.path, b.path], [a.text, b.text], seed=seed)
    first, again = run(7), run(7)
    assert [a.sample_rate for a in first] == [24000, 24000]
    assert all(np.array_equal(a.waveform, b.waveform) and a.waveform.size % 320 == 0 for a, b in zip(first, again))
