"""Across machines: two torchrun "nodes" on loopback (``--nnodes 2 --nproc_per_node 1 --node_rank 0|1
--master_addr 127.0.0.1``) train the toy model to the weights of one node running two processes, and a resume of
that 2-process checkpoint with one process is refused with one line (batches and RNG streams are per rank)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from models.base import checkpoint as ckpt
from tests.base.test_multiprocess import TOY_CONFIG, run_train
from tests.helpers import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(var, None)
    return env


@pytest.mark.slow
def test_two_nodes_on_loopback_equal_one_node_and_a_resume_with_another_world_size_is_refused(tmp_path, toy_manifest):
    cfg = tmp_path / "toy.json5"
    cfg.write_text(json.dumps({"base_config": str(TOY_CONFIG), "data": {"train_manifest": str(toy_manifest)},
                               "train": {"tensorboard": False, "valid_every": 0, "save_every": 0}}))  # fmt: skip
    run_train(tmp_path / "one_node", cfg, "train.max_steps=4")
    port = _free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--node_rank",
         str(rank), "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "bins.train", "--config", str(cfg),
         "--exp_dir", str(tmp_path / "two_nodes"), "train.max_steps=4"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for node in nodes:
        _, err = node.communicate(timeout=300)
        assert node.returncode == 0, err[-3000:]
    one = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "one_node/checkpoints"), "autoencoder")
    two = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "two_nodes/checkpoints"), "autoencoder")
    assert ckpt.read_meta(ckpt.latest_checkpoint(tmp_path / "two_nodes/checkpoints"))["world_size"] == 2
    diff = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert diff < 1e-6, f"2 nodes differ from 1 node by {diff}"  # gloo may sum in another order: ~1e-8

    done = subprocess.run([sys.executable, "-m", "bins.train", "--config", str(cfg), "--exp_dir",
                           str(tmp_path / "two_nodes"), "--resume", "train.max_steps=6"],
                          cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot resume: the checkpoint was written by 2 process(es) and this run has 1" in last
    assert "Traceback" not in done.stderr
    assert torch.equal(two["encoder.weight"], ckpt.load_model_weights(
        ckpt.latest_checkpoint(tmp_path / "two_nodes/checkpoints"), "autoencoder")["encoder.weight"])


@pytest.mark.slow
def test_torchrun_two_ranks_two_workers_stream_shards_in_equal_steps(tmp_path):
    """A real 2-process launch streaming shards with 2 dataloader workers each: both ranks run the planned
    number of steps for one epoch (no rank waits on another) and write one checkpoint."""
    from models.base.sampler import BatchingConfig
    from models.base.shar_stream import ShardStream
    from tests.base.test_shar_stream import RATE, make_shards

    shar_dir = make_shards(tmp_path)
    cfg = tmp_path / "toy.json5"
    cfg.write_text(json.dumps({"base_config": str(TOY_CONFIG),
                               "data": {"format": "shar", "shar_dir": str(shar_dir), "sample_rate": RATE, "segment": 2000},
                               "train": {"tensorboard": False, "valid_every": 0, "save_every": 0, "num_workers": 2,
                                         "max_epochs": 1, "max_steps": 1000}}))  # fmt: skip
    run_train(tmp_path / "exp", cfg)
    streams = [ShardStream(shar_dir, ["recording"], str, list, BatchingConfig(), 4, seed=1234, rank=r, world_size=2,
                           num_workers=2) for r in range(2)]  # fmt: skip
    for stream in streams:
        stream.set_epoch(0)
    planned = max(sum(s.counts) for s in streams)
    (meta,) = [ckpt.read_meta(p) for p in ckpt.list_checkpoints(tmp_path / "exp/checkpoints")]
    assert meta["world_size"] == 2 and meta["epoch"] == 1 and meta["step"] == planned
