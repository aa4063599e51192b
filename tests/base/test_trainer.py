"""BaseTrainer behaviour on the toy model: exact resume, schedulers, accumulation, skipping, checkpoints."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from models.base import checkpoint as ckpt
from models.base.tracker import read_log
from models.example.toy_autoencoder.trainer import ToyExperimentConfig, ToyTrainer
from tests.helpers import REPO_ROOT
from utils.config import load_config, validate

TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"


def make_cfg(manifest, *overrides):
    raw = load_config(TOY_CONFIG, [f"data.train_manifest={manifest}", "train.tensorboard=false", *overrides])
    return validate(raw, ToyExperimentConfig)


def final_weights(exp_dir):
    return load_file(str(ckpt.latest_checkpoint(exp_dir / "checkpoints") / "autoencoder.safetensors"))


def test_resume_continues_exactly(tmp_path, toy_manifest):
    # 2 batches per epoch, so 10 steps cross epoch boundaries and the resume point (step 5) is mid-epoch.
    straight = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=10", "train.save_every=0"), tmp_path / "a")
    straight.train()
    first = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=5", "train.save_every=5"), tmp_path / "b")
    first.train()
    resumed = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=10", "train.save_every=0"), tmp_path / "b", resume=True)
    assert resumed.step == 5 and resumed.epoch == 2 and resumed.batch_in_epoch == 1
    resumed.train()
    log_a, log_b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert sorted(log_a) == sorted(log_b) == list(range(1, 11))
    for step in range(1, 11):
        assert log_a[step]["l1"] == log_b[step]["l1"], step
        assert log_a[step]["lr_autoencoder"] == log_b[step]["lr_autoencoder"]
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_scheduler_steps_per_optimizer_step(tmp_path, toy_manifest):
    trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=6", "train.schedulers.default.gamma=0.5"), tmp_path)
    trainer.train()
    log = read_log(tmp_path)
    # logged after the step's scheduler update: lr_k = lr0 * 0.5**k
    for step in range(1, 7):
        assert math.isclose(log[step]["lr_autoencoder"], 2e-3 * 0.5**step, rel_tol=1e-9)
    trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=6", "train.schedulers.default.gamma=0.5",
                                  "train.scheduler_interval=epoch"), tmp_path / "epoch")  # fmt: skip
    trainer.train()
    log = read_log(tmp_path / "epoch")
    # 2 batches per epoch: the lr halves at the end of each epoch (after steps 2 and 4)
    assert [log[s]["lr_autoencoder"] for s in range(1, 7)] == [2e-3, 2e-3, 1e-3, 1e-3, 5e-4, 5e-4]


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, toy_manifest):
    trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=3", "train.grad_accum_steps=2",
                                  "train.batch_size=2"), tmp_path)  # fmt: skip
    trainer.train()
    assert trainer.step == 3 and trainer.batch_in_epoch == 2  # 6 micro-batches of 2 items, 4 per epoch
    assert trainer.epoch == 1


def test_nonfinite_loss_is_skipped_and_counted(tmp_path, toy_manifest):
    trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=4", "train.save_every=0"), tmp_path)
    original = trainer.train_step
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        if calls["n"] == 2:
            batch = batch * float("nan")
        return original(batch)

    trainer.train_step = poisoned
    before = {k: v.clone() for k, v in trainer.unwrap("autoencoder").state_dict().items()}
    trainer.train()
    assert trainer.skipped["autoencoder"] == 1
    after = trainer.unwrap("autoencoder").state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert read_log(tmp_path)[4]["skipped_autoencoder"] == 1


def test_checkpoint_layout_keep_last_and_weights_only(tmp_path, toy_manifest):
    trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=8", "train.save_every=2",
                                  "train.keep_last=2"), tmp_path)  # fmt: skip
    trainer.train()
    ckpts = ckpt.list_checkpoints(tmp_path / "checkpoints")
    assert [ckpt.read_meta(c)["step"] for c in ckpts] == [6, 8]
    last = ckpts[-1]
    meta = ckpt.read_meta(last)
    assert set(meta["files"]) == {"autoencoder.safetensors", "optimizer_autoencoder.pt",
                                  "scheduler_autoencoder.pt", "trainer_state.pt"}
    for name in meta["files"]:
        if name.endswith(".pt"):
            torch.load(last / name, map_location="cpu", weights_only=True)
    assert ckpt.read_config(last)["model_type"] == "toy_autoencoder"
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_init_from_and_finetune_report_keys(tmp_path, toy_manifest):
    src = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=2"), tmp_path / "src")
    src.train()
    other = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=2", "model.channels=8"), tmp_path / "dst",
                       init_from=tmp_path / "src")
    report = other.load_report["autoencoder"]
    # encoder weight/bias and decoder weight change shape; the decoder bias (1,) loads
    assert other.step == 0 and len(report["mismatched"]) == 3 and report["missing"] == []
    assert torch.equal(other.unwrap("autoencoder").decoder.bias, src.unwrap("autoencoder").decoder.bias)
    with pytest.raises(ckpt.CheckpointError, match="shape-mismatched"):
        ToyTrainer(make_cfg(toy_manifest, "model.channels=8"), tmp_path / "ft", finetune_from=tmp_path / "src")
    same = ToyTrainer(make_cfg(toy_manifest), tmp_path / "ft2", finetune_from=tmp_path / "src")
    assert same.load_report["autoencoder"] == {"missing": [], "unexpected": [], "mismatched": []}


def _train_cmd(cfg_path, exp_dir, *extra):
    return [sys.executable, "-m", "bins.train", "--config", str(cfg_path), "--exp_dir", str(exp_dir), *extra]


def _kill_9_then_resume_matches_straight_run(tmp_path, manifest, steps, save_every, **train):
    """Train straight; train again, SIGKILL after the 2nd checkpoint, --resume: same losses and weights."""
    cfg = tmp_path / "toy.json5"
    cfg.write_text(json.dumps({"base_config": str(TOY_CONFIG), "data": {"train_manifest": str(manifest)},
                               "train": {"tensorboard": False, "max_steps": steps, "save_every": save_every,
                                         "keep_last": 100, "valid_every": 0, **train}}))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run(_train_cmd(cfg, tmp_path / "straight"), cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    proc = subprocess.Popen(_train_cmd(cfg, tmp_path / "killed"), cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len(ckpt.list_checkpoints(tmp_path / "killed/checkpoints")) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = ckpt.list_checkpoints(tmp_path / "killed/checkpoints")
    assert saved and ckpt.read_meta(saved[-1])["step"] < steps, "the run finished before it could be killed"
    subprocess.run(_train_cmd(cfg, tmp_path / "killed", "--resume"), cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    a, b = read_log(tmp_path / "straight"), read_log(tmp_path / "killed")
    assert all(a[s]["l1"] == b[s]["l1"] for s in range(1, steps + 1))
    wa, wb = final_weights(tmp_path / "straight"), final_weights(tmp_path / "killed")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_kill_9_then_resume_matches_straight_run(tmp_path, toy_manifest):
    _kill_9_then_resume_matches_straight_run(tmp_path, toy_manifest, steps=400, save_every=25)


def test_kill_9_then_resume_matches_straight_run_with_duration_batches(tmp_path, toy_manifest):
    """The same guarantee with train.batching by duration (batches of 1-2 clips of 5.6-7.7 s)."""
    import soundfile as sf

    rows = [json.loads(line) for line in toy_manifest.read_text().splitlines()]
    timed = tmp_path / "timed.jsonl"
    timed.write_text("".join(json.dumps({**row, "duration": sf.info(row["path"]).duration}) + "\n" for row in rows))
    batching = {"type": "duration", "max_seconds": 14.0, "buckets": 3}
    cfg = make_cfg(timed, f"train.batching={json.dumps(batching)}")
    sizes = [len(b) for b in ToyTrainer(cfg, tmp_path / "probe").sampler]
    assert len(set(sizes)) > 1 and sum(sizes) == 8, sizes  # really batched by duration, every clip once
    _kill_9_then_resume_matches_straight_run(tmp_path, timed, steps=300, save_every=20, batching=batching)
