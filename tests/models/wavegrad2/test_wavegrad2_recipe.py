"""egs/tts/wavegrad2/run.sh: options and errors (the full mini-corpus run, ~7 min on 2 busy cores, is run by hand)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

RECIPE = REPO_ROOT / "egs" / "tts" / "wavegrad2"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ECHELON_PYTHON": sys.executable}
    return subprocess.run(["bash", str(RECIPE / "run.sh"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_help_and_option_errors(tmp_path):
    out = _run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for needle in ("--stage N --stop_stage M", "3 schedule", "5 evaluation", "--infer_steps N", "--train_args"):
        assert needle in out.stdout, needle
    bad = _run("--no_such_option", "1", cwd=tmp_path)
    assert bad.returncode != 0 and "no_such_option" in bad.stderr
    bad = _run("--infer_steps", "six", "--exp_dir", str(tmp_path / "e"), cwd=tmp_path)
    assert bad.returncode != 0 and "--infer_steps" in bad.stderr
    bad = _run("--stage", "3", "--stop_stage", "3", "--exp_dir", str(tmp_path / "e2"), cwd=tmp_path)
    assert bad.returncode != 0 and "no trained WaveGrad 2" in bad.stderr
