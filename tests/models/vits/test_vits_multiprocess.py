"""Tiny VITS with two real processes on CPU (torchrun, gloo): DDP over generator and discriminator, one
checkpoint with world_size 2, and a 2-rank resume that repeats the uninterrupted run's losses exactly (every
rank's RNG state is restored: VITS draws random windows and noise)."""

import json

import pytest
import torch

from models.base import checkpoint as ckpt
from models.base.tracker import read_log
from tests.base.test_multiprocess import only_checkpoint_meta, run_train
from tests.helpers import REPO_ROOT
from tests.models.vits.test_vits_train import _manifest


@pytest.mark.slow
def test_tiny_vits_two_ranks_resume_exactly(tmp_path):
    manifest = _manifest(tmp_path, "ljspeech", per_speaker=4)
    cfg = tmp_path / "vits.json5"
    cfg.write_text(json.dumps({
        "base_config": str(REPO_ROOT / "models/tts/vits/configs/tiny.json5"),
        "model": {"n_speakers": 0},
        "data": {"train_manifest": str(manifest), "speakers": [], "sample_rate": 22050},
        "train": {"batch_size": 1, "log_every": 1, "valid_every": 0, "keep_last": 5},
    }))  # fmt: skip
    run_train(tmp_path / "straight", cfg, "train.max_steps=3", "train.save_every=0")
    (meta,) = only_checkpoint_meta(tmp_path / "straight")
    assert meta["world_size"] == 2 and meta["step"] == 3 and meta["epoch"] == 1  # 4 clips: 2 steps per epoch
    run_train(tmp_path / "resumed", cfg, "train.max_steps=1", "train.save_every=1")  # resumes mid-epoch
    run_train(tmp_path / "resumed", cfg, "train.max_steps=3", "train.save_every=0", resume=True)
    a, b = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for key in ("loss_gen_total", "loss_disc", "loss_mel", "loss_kl"):
        assert [a[s][key] for s in a] == [b[s][key] for s in a], key
    for name in ("generator", "discriminator"):
        wa = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "straight/checkpoints"), name)
        wb = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "resumed/checkpoints"), name)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
