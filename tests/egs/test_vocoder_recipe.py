"""egs/vocoder/{hifigan,bigvgan}/run.sh: options and errors (the stages run by hand: ~1.5 min on the mini corpus)."""

from __future__ import annotations

import pytest

from tests.helpers import REPO_ROOT, assert_recipe_cli


@pytest.mark.parametrize("name", ["hifigan", "bigvgan"])
def test_help_and_errors(tmp_path, name):
    assert_recipe_cli(REPO_ROOT / "egs" / "vocoder" / name / "run.sh", tmp_path,
                      (f"standalone {name} mel vocoder", "3 inference"),
                      {("--stop_stage", "9", "--exp_dir", str(tmp_path / "e")): "stages run from 0 to 4"})
