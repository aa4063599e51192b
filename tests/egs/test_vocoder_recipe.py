"""egs/vocoder/{hifigan,bigvgan}/run.sh: options and errors (the stages run by hand: ~1.5 min on the mini corpus)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT


@pytest.mark.parametrize("name", ["hifigan", "bigvgan"])
def test_help_and_errors(tmp_path, name):
    env = {**os.environ, "ECHELON_PYTHON": sys.executable}
    script = str(REPO_ROOT / "egs" / "vocoder" / name / "run.sh")
    out = subprocess.run(["bash", script, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f"standalone {name} mel vocoder" in out.stdout and "3 inference" in out.stdout
    bad = subprocess.run(["bash", script, "--bogus", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "bogus" in bad.stderr
    bad = subprocess.run(["bash", script, "--stop_stage", "9", "--exp_dir", str(tmp_path / "e")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "stages run from 0 to 4" in bad.stderr
