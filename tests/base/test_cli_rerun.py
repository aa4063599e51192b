"""Ordinary accidents lose nothing (issue 23): reruns of echelon-train and interrupted training, through the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from models.base import checkpoint as ckpt
from tests.helpers import REPO_ROOT

TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"


def _train(exp, manifest, *extra, steps=4):
    cmd = [sys.executable, "-m", "bins.train", "--config", str(TOY_CONFIG), "--exp_dir", str(exp),
           f"data.train_manifest={manifest}", f"train.max_steps={steps}", "train.save_every=2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def _steps(exp):
    return [json.loads(line)["step"] for line in (exp / "train_log.jsonl").read_text().splitlines()]


def test_second_train_refuses_then_resume_and_overwrite(tmp_path, toy_manifest):
    exp = tmp_path / "exp"
    assert _train(exp, toy_manifest).returncode == 0
    before = {p.name: (p / "meta.json").read_bytes() for p in ckpt.list_checkpoints(exp / "checkpoints")}
    assert sorted(before) == ["step_00000002", "step_00000004"]

    again = _train(exp, toy_manifest)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip() == (f"echelon-train: {exp} already holds a run at step 4: --resume to continue, "
                                    f"--overwrite to start again (the old run is moved to {exp}/previous_runs/)")
    assert {p.name: (p / "meta.json").read_bytes() for p in ckpt.list_checkpoints(exp / "checkpoints")} == before

    # a run killed after logging step 5 but before its next checkpoint: the resume from step 4 logs 5 again
    (exp / "train_log.jsonl").write_text((exp / "train_log.jsonl").read_text() + '{"step": 5, "l1": 9.0}\n')
    resumed = _train(exp, toy_manifest, "--resume", steps=6)
    assert resumed.returncode == 0, resumed.stderr
    assert _steps(exp) == [1, 2, 3, 4, 5, 6]  # no step logged twice

    (exp / "train_log.jsonl").write_text((exp / "train_log.jsonl").read_text() + '{"step": 9, "spl')  # torn tail
    ckpt_6 = exp / "checkpoints" / "step_00000006"
    assert _train(exp, toy_manifest, "--resume", steps=6).returncode == 0
    assert _steps(exp) == [1, 2, 3, 4, 5, 6] and ckpt_6.is_dir()

    fresh = _train(exp, toy_manifest, "--overwrite", steps=2)
    assert fresh.returncode == 0, fresh.stderr
    (old,) = (exp / "previous_runs").iterdir()
    assert f"moved the previous run of {exp} to {old}" in fresh.stderr
    assert [p.name for p in ckpt.list_checkpoints(old / "checkpoints")] == ["step_00000004", "step_00000006"]
    assert _steps(old) == [1, 2, 3, 4, 5, 6] and _steps(exp) == [1, 2]
    assert [p.name for p in ckpt.list_checkpoints(exp / "checkpoints")] == ["step_00000002"]


def test_exp_dir_that_is_a_file_is_one_line(tmp_path, toy_manifest):
    exp = tmp_path / "exp"
    exp.write_text("not a folder")
    run = _train(exp, toy_manifest)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"echelon-train: experiment directory {exp}: {exp} is a file, not a directory"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_training_exits_with_last_checkpoint(tmp_path, toy_manifest, signum):
    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "bins.train", "--config", str(TOY_CONFIG), "--exp_dir", str(exp),
           f"data.train_manifest={toy_manifest}", "train.max_steps=100000", "train.save_every=3",
           "train.tensorboard=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    deadline = time.monotonic() + 120
    while not ckpt.list_checkpoints(exp / "checkpoints") and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum and "Traceback" not in err
    saved = ckpt.list_checkpoints(exp / "checkpoints")
    step = json.loads((saved[-1] / "meta.json").read_text())["step"]
    assert f"last checkpoint: step {step}; --resume continues from it" in err.strip().splitlines()[-1]
    assert all(ckpt.verify_checkpoint(p) is None for p in saved)  # complete, hashes match
    assert not list((exp / "checkpoints").glob(".tmp-*"))
