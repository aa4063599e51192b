"""Tiny VALL-E trained through the shared trainer on real clips of the mini corpus (codes of the tiny random
EnCodec): both losses fall, resume is exact, the saved checkpoint decodes through the registered inference."""

from __future__ import annotations

import json

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
    train = [e for e in read_manifest(root / "manifests" / "train.jsonl") if e.text and e.duration <= 4.5]
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
    cfg = config(features, ["train.max_steps=30", "train.save_every=0"])
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
    straight = ValleTrainer(config(features, ["train.max_steps=6", "train.save_every=3"]), tmp_path / "a", cpu=True)
    straight.train()
    first = ValleTrainer(config(features, ["train.max_steps=3", "train.save_every=3"]), tmp_path / "b", cpu=True)
    first.train()
    resumed = ValleTrainer(config(features, ["train.max_steps=6", "train.save_every=3"]), tmp_path / "b", resume=True, cpu=True)
    assert resumed.step == 3
    resumed.train()
    for (name, a), (_, b) in zip(straight.unwrap("valle").state_dict().items(), resumed.unwrap("valle").state_dict().items()):
        assert torch.equal(a, b), name
