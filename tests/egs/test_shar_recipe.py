"""--data_format shar of the TTS template: VITS on the mini corpus writes Lhotse Shar shards of the train split
and trains from them (the untranscribed clips the VITS dataset skips are left out of the stream too); an
unknown format is one line."""

from __future__ import annotations

import json

import pytest

from processors.data.shar import list_shards
from tests.helpers import REPO_ROOT, run_recipe

RECIPE = REPO_ROOT / "egs/tts/vits/run.sh"


def _run(*args, cwd):
    return run_recipe(RECIPE, *args, cwd=cwd, env={"OMP_NUM_THREADS": "1"}, timeout=900)


def test_unknown_data_format_is_one_line(tmp_path):
    done = _run("--dataset", "mini", "--exp_dir", str(tmp_path / "e"), "--stop_stage", "0", "--data_format", "tar",
                cwd=tmp_path)
    assert done.returncode != 0 and "--data_format tar: expected files or shar" in done.stderr


@pytest.mark.slow
def test_vits_recipe_trains_from_shards(tmp_path):
    done = _run("--dataset", "mini", "--exp_dir", str(tmp_path / "e"), "--stop_stage", "2", "--data_format", "shar",
                "--synthetic_speakers", "0", "--train_args", "train.max_steps=2 train.save_every=2 train.valid_every=0",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "writing Lhotse Shar shards" in done.stderr + done.stdout
    assert sum(s.items for s in list_shards(tmp_path / "e/shar")) > 0
    config = json.loads((tmp_path / "e/vits/checkpoints/step_00000002/config.json").read_text())
    assert config["data"]["format"] == "shar" and config["data"]["shar_dir"] == str(tmp_path / "e/shar")
