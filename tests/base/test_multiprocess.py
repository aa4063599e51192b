"""Two real processes on CPU (gloo): one checkpoint that records world_size 2, and an exact 2-rank resume;
a launcher that asked for more processes than the run has is reported."""

import json
import logging
import os
import subprocess
import sys

import torch

from models.base import checkpoint as ckpt
from models.base.distributed import check_world_size
from models.base.tracker import read_log
from tests.helpers import REPO_ROOT

TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"
ACCELERATE_2 = ("accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0")


def run_train(exp_dir, config, *overrides, launcher=("torch.distributed.run", "--standalone", "--nproc_per_node", "2"),
              resume=False):  # fmt: skip
    """``python -m <launcher> -m bins.train ...`` with one torch thread per process; returns the finished process."""
    cmd = [sys.executable, "-m", *launcher, "-m", "bins.train", "--config", str(config), "--exp_dir", str(exp_dir),
           *(["--resume"] if resume else []), *overrides]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(var, None)
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def only_checkpoint_meta(exp_dir):
    root = exp_dir / "checkpoints"
    assert not list(root.glob(".tmp-*")), "a temporary checkpoint directory was left behind"
    saved = ckpt.list_checkpoints(root)
    return [ckpt.read_meta(path) for path in saved]


def test_torchrun_two_ranks_write_one_checkpoint_and_resume_exactly(tmp_path, toy_manifest):
    cfg = tmp_path / "toy.json5"
    cfg.write_text(json.dumps({"base_config": str(TOY_CONFIG), "data": {"train_manifest": str(toy_manifest)},
                               "train": {"tensorboard": False, "valid_every": 0, "keep_last": 5}}))  # fmt: skip
    # the straight run through accelerate (1.x has no --multi_cpu: --multi_gpu starts the processes, the
    # trainer picks gloo without a GPU), the interrupted one through torchrun: interchangeable
    run_train(tmp_path / "straight", cfg, "train.max_steps=8", "train.save_every=0", launcher=ACCELERATE_2)
    (meta,) = only_checkpoint_meta(tmp_path / "straight")
    # 8 clips in batches of 4: one batch per rank and epoch, so step 8 is in epoch 7 (epoch 3 with one process)
    assert meta["world_size"] == 2 and meta["step"] == 8 and meta["epoch"] == 7
    state = ckpt.load_torch_state(ckpt.latest_checkpoint(tmp_path / "straight/checkpoints") / "trainer_state.pt")
    assert len(state["rng_ranks"]) == 2

    run_train(tmp_path / "resumed", cfg, "train.max_steps=3", "train.save_every=3")
    assert [m["step"] for m in only_checkpoint_meta(tmp_path / "resumed")] == [3]
    run_train(tmp_path / "resumed", cfg, "train.max_steps=8", "train.save_every=0", resume=True)
    metas = only_checkpoint_meta(tmp_path / "resumed")
    assert [m["step"] for m in metas] == [3, 8] and all(m["world_size"] == 2 for m in metas)
    a, b = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    assert sorted(a) == sorted(b) == list(range(1, 9))
    assert [a[s]["l1"] for s in a] == [b[s]["l1"] for s in a]
    wa = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "straight/checkpoints"), "autoencoder")
    wb = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "resumed/checkpoints"), "autoencoder")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_launcher_asking_for_more_processes_than_the_run_has_warns(monkeypatch, caplog):
    """``accelerate launch --cpu --num_processes 2`` starts ONE process with MASTER_PORT set and no WORLD_SIZE
    (checked by hand with accelerate 1.15); torchrun sets WORLD_SIZE."""
    for var in ("WORLD_SIZE", "ACCELERATE_NUM_PROCESSES", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_PORT", "29500")
    with caplog.at_level(logging.WARNING, logger="echelon.trainer"):
        check_world_size(1)
    assert "asked for at least 2 processes but this run has 1" in caplog.text
    caplog.clear()
    monkeypatch.delenv("ACCELERATE_USE_CPU")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with caplog.at_level(logging.WARNING, logger="echelon.trainer"):
        check_world_size(4)
        assert not caplog.text
        check_world_size(2)
    assert "asked for 4 processes but this run has 2" in caplog.text
