"""egs/tts/vits: options and errors of run.sh (the speaker table and job lists are the template's:
tests/egs/test_tts_template.py).

The full pipeline (stages 0-4 on the mini corpus, ~80 s on 2 CPU cores) is run by hand, not in the suite;
its model, trainer and inference pieces are tested in tests/models/vits.
"""

from __future__ import annotations


from tests.helpers import REPO_ROOT, assert_recipe_cli

RECIPE = REPO_ROOT / "egs" / "tts" / "vits"


def test_help_and_option_errors(tmp_path):
    exp = ("--exp_dir", str(tmp_path / "e"))
    assert_recipe_cli(RECIPE / "run.sh", tmp_path,
                      ("--stage N --stop_stage M", "--dataset NAME", "2 train", "4 evaluation", "--train_args"),
                      {("--dataset", "timit", *exp): "--dataset must be one of",
                       ("--stage", "3", "--stop_stage", "1", *exp): "after --stop_stage"})
