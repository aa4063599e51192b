"""egs/tts/wavegrad2/run.sh: options and errors (the full mini-corpus run, ~7 min on 2 busy cores, is run by hand)."""

from __future__ import annotations


from tests.helpers import REPO_ROOT, assert_recipe_cli

RECIPE = REPO_ROOT / "egs" / "tts" / "wavegrad2"


def test_help_and_option_errors(tmp_path):
    assert_recipe_cli(RECIPE / "run.sh", tmp_path,
                      ("--stage N --stop_stage M", "3 schedule", "5 evaluation", "--infer_steps N", "--train_args"),
                      {("--infer_steps", "six", "--exp_dir", str(tmp_path / "e")): "--infer_steps",
                       ("--stage", "3", "--stop_stage", "3", "--exp_dir", str(tmp_path / "e2")): "no trained WaveGrad 2"})
