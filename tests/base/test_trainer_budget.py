"""BaseTrainer's generic run controls (issue 44): the CPU-time budget (train.cpu_minutes) carried across --resume,
request_stop / after_step for subclasses, and where mixed precision comes from (the config, else the launcher)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from bins import train as train_cli
from models.base import checkpoint as ckpt
from models.base.tracker import read_log
from models.example.toy_autoencoder.trainer import ToyTrainer
from tests.base.test_trainer import TOY_CONFIG, make_cfg
from tests.helpers import REPO_ROOT

BUDGET = 0.01  # CPU minutes: 0.6 s, a few dozen toy steps


def _launcher_env():
    """This environment without what a surrounding launcher may have set; one torch thread per process."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU",
                "ACCELERATE_MIXED_PRECISION"):
        env.pop(var, None)
    return env


def _state(exp_dir):
    return ckpt.load_torch_state(ckpt.latest_checkpoint(exp_dir / "checkpoints") / "trainer_state.pt")


def test_cpu_budget_stops_saves_and_resume_counts_the_earlier_minutes(tmp_path, toy_manifest):
    first = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=100000", "train.save_every=0",
                                f"train.cpu_minutes={BUDGET}"), tmp_path)  # fmt: skip
    first.train()
    stopped = first.step
    assert first.interrupted is None and 1 < stopped < 100000
    assert first.stop_reason == f"CPU budget of {BUDGET:g} min reached at step {stopped}"
    assert ckpt.read_meta(ckpt.latest_checkpoint(tmp_path / "checkpoints"))["step"] == stopped
    recorded = _state(tmp_path)["cpu_minutes"]
    logged = [read_log(tmp_path)[s]["cpu_minutes"] for s in range(1, stopped + 1)]
    # logged before each step's budget check: the step before the last had not reached it
    assert logged == sorted(logged) and logged[-2] < BUDGET <= recorded and logged[-1] <= recorded

    double = make_cfg(toy_manifest, "train.max_steps=100000", "train.save_every=0", f"train.cpu_minutes={2 * BUDGET}")
    resumed = ToyTrainer(double, tmp_path, resume=True)
    assert resumed.step == stopped and resumed.cpu_minutes_used() == recorded
    cpu_before = time.process_time()
    resumed.train()
    spent = (time.process_time() - cpu_before) / 60
    # it continued the count: the second half of the budget, not a whole budget of its own
    assert 2 * BUDGET - recorded <= spent < 2 * BUDGET
    assert resumed.step > stopped
    assert resumed.stop_reason == f"CPU budget of {2 * BUDGET:g} min reached at step {resumed.step}"
    assert read_log(tmp_path)[stopped + 1]["cpu_minutes"] > recorded
    assert _state(tmp_path)["cpu_minutes"] >= 2 * BUDGET

    spent_already = ToyTrainer(double, tmp_path, resume=True)
    last = spent_already.train()
    assert spent_already.steps_trained == 0 and spent_already.step == resumed.step
    assert spent_already.stop_reason == f"CPU budget of {2 * BUDGET:g} min reached at step {resumed.step}"
    assert last["l1"] == read_log(tmp_path)[resumed.step]["l1"]  # the log's values of the last step


class StopAtThree(ToyTrainer):
    """Asks to stop after step 3 and notes what ``after_step`` found done."""

    def after_step(self) -> None:
        saved = [ckpt.read_meta(p)["step"] for p in ckpt.list_checkpoints(self.ckpt_root)]
        self.seen.append((self.step, self.step in read_log(self.exp_dir), saved))
        if self.step == 3:
            self.request_stop("three steps are enough")


def test_request_stop_from_after_step_saves_and_returns(tmp_path, toy_manifest):
    trainer = StopAtThree(make_cfg(toy_manifest, "train.max_steps=50", "train.save_every=2"), tmp_path)
    trainer.seen = []
    last = trainer.train()
    # after_step ran after every step, once that step was logged and (step 2) saved
    assert trainer.seen == [(1, True, []), (2, True, [2]), (3, True, [2])]
    assert trainer.step == 3 and trainer.interrupted is None and trainer.stop_reason == "three steps are enough"
    assert [ckpt.read_meta(p)["step"] for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 3]
    assert last["l1"] == read_log(tmp_path)[3]["l1"]


def test_cli_budget_stop_exits_0_and_a_bad_budget_is_one_line(tmp_path, toy_manifest, capsys):
    args = ["--config", str(TOY_CONFIG), "--exp_dir", str(tmp_path), f"data.train_manifest={toy_manifest}",
            "train.max_steps=100000", "train.save_every=0", "train.tensorboard=false"]  # fmt: skip
    assert train_cli.main([*args, f"train.cpu_minutes={BUDGET / 2}"]) == 0
    step = max(read_log(tmp_path))
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith(f"stopped at step {step} (CPU budget of {BUDGET / 2:g} min reached at step {step}): l1=")
    assert train_cli.main(["--resume", *args, "train.cpu_minutes=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "echelon-train: train.cpu_minutes must be a positive number of minutes, got 0.0"


RANK_STOP_SCRIPT = """
import json, pathlib, sys
from models.example.toy_autoencoder.trainer import ToyTrainer
from tests.base.test_trainer import make_cfg

class RankOneStops(ToyTrainer):
    def after_step(self):
        if self.accelerator.process_index == 1 and self.step == 3:
            self.request_stop("rank 1 asked")

trainer = RankOneStops(make_cfg(sys.argv[1], "train.max_steps=50", "train.save_every=0"), sys.argv[2])
trainer.train()
# one file a rank: the two ranks' prints share the launcher's stdout and can land on one line
rank = trainer.accelerator.process_index
pathlib.Path(sys.argv[2], f"rank{rank}.json").write_text(json.dumps([rank, trainer.step, trainer.stop_reason]))
"""


def test_a_stop_requested_on_one_rank_stops_every_rank_at_that_step(tmp_path, toy_manifest):
    script = tmp_path / "rank_stop.py"
    script.write_text(RANK_STOP_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(toy_manifest), str(tmp_path / "exp")]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=_launcher_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = sorted(json.loads(path.read_text()) for path in (tmp_path / "exp").glob("rank*.json"))
    assert ranks == [[0, 3, "another process stopped at step 3"], [1, 3, "rank 1 asked"]]
    (saved,) = ckpt.list_checkpoints(tmp_path / "exp" / "checkpoints")
    assert ckpt.read_meta(saved)["step"] == 3 and ckpt.read_meta(saved)["world_size"] == 2


@pytest.mark.parametrize(
    "configured, launcher, expected, source",
    [
        (None, None, "no", "the default (neither train.mixed_precision nor a launcher sets it)"),
        (None, "bf16", "bf16", "the launcher (ACCELERATE_MIXED_PRECISION; train.mixed_precision is not set)"),
        ("no", "bf16", "no", "train.mixed_precision in the config; the launcher's bf16 is overridden"),
        ("bf16", None, "bf16", "train.mixed_precision in the config"),
    ],
)
def test_mixed_precision_is_the_configs_else_the_launchers(tmp_path, toy_manifest, monkeypatch, caplog,
                                                           configured, launcher, expected, source):  # fmt: skip
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    if launcher:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launcher)
    overrides = [f"train.mixed_precision={configured}"] if configured else []
    with caplog.at_level(logging.INFO, logger="echelon.trainer"):
        trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=2", *overrides), tmp_path, cpu=True)
    assert trainer.accelerator.mixed_precision == expected
    assert f"mixed precision {expected}, from {source}" in caplog.messages


def test_launcher_fp16_on_cpu_is_refused_naming_the_launcher(tmp_path, toy_manifest, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(ValueError, match=r"fp16 needs a GPU \(mixed precision from the launcher"):
        ToyTrainer(make_cfg(toy_manifest), tmp_path, cpu=True)


def test_accelerate_launch_yaml_precision_reaches_the_trainer(tmp_path, toy_manifest):
    """TRAINING.md's case: the launcher's YAML says bf16 and the config says nothing, so bf16 trains."""
    yaml = tmp_path / "accelerate.yaml"
    yaml.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_processes: 1\n"
                    "num_machines: 1\nuse_cpu: true\nmixed_precision: bf16\ndynamo_config: {}\n")  # fmt: skip
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(yaml), "-m", "bins.train",
           "--config", str(TOY_CONFIG), "--exp_dir", str(tmp_path / "exp"), f"data.train_manifest={toy_manifest}",
           "train.max_steps=2", "train.tensorboard=false"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=_launcher_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mixed precision bf16, from the launcher (ACCELERATE_MIXED_PRECISION" in done.stderr
