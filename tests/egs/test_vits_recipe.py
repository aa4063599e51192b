"""egs/tts/vits: options and errors of run.sh (the speaker table and job lists are the template's:
tests/egs/test_tts_template.py).

The full pipeline (stages 0-4 on the mini corpus, ~80 s on 2 CPU cores) is run by hand, not in the suite;
its model, trainer and inference pieces are tested in tests/models/vits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

RECIPE = REPO_ROOT / "egs" / "tts" / "vits"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ECHELON_PYTHON": sys.executable}
    return subprocess.run(["bash", str(RECIPE / "run.sh"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_help_and_option_errors(tmp_path):
    out = _run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for needle in ("--stage N --stop_stage M", "--dataset NAME", "2 train", "4 evaluation", "--train_args"):
        assert needle in out.stdout, needle
    bad = _run("--no_such_option", "1", cwd=tmp_path)
    assert bad.returncode != 0 and "no_such_option" in bad.stderr
    bad = _run("--dataset", "timit", "--exp_dir", str(tmp_path / "e"), cwd=tmp_path)
    assert bad.returncode != 0 and "--dataset must be one of" in bad.stderr
    bad = _run("--stage", "3", "--stop_stage", "1", "--exp_dir", str(tmp_path / "e"), cwd=tmp_path)
    assert bad.returncode != 0 and "after --stop_stage" in bad.stderr
