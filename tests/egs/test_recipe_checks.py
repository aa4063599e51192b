"""What every recipe checks before or instead of running its stages, asserted by running the scripts on tiny inputs:

* a malformed config (json5 syntax, or a key its family's schema does not have) stops the call before stage 0,
  in one line naming the option and the file (egs/utils/corpus_setup.sh: check_config_files);
* a family's own ``stage_data`` / ``stage_manifests`` hooks run instead of the shared ones
  (egs/utils/data_stages.sh defines those only where the recipe has none);
* the TTS template on a corpus without per-phoneme durations, for a family that trains on them, names the
  missing durations (not the "empty text" of an untranscribed clip).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_recipe

EGS = REPO_ROOT / "egs"
TEMPLATE = EGS / "TEMPLATE" / "tts" / "run.sh"
TOY_TTS = REPO_ROOT / "models" / "example" / "toy_tts" / "configs"
# (recipe, config option): every TTS family, the template run directly, a vocoder and the benchmark
CONFIG_OPTIONS = [(p, "--config") for p in sorted((EGS / "tts").glob("*/run.sh"))
                  if "recipe_config config " in p.read_text()] + [  # egs/tts/finetune trains no config
    (EGS / "tts" / "glow_wavegan" / "run.sh", "--vae_config"), (TEMPLATE, "--config"),
    (EGS / "vocoder" / "hifigan" / "run.sh", "--config"), (EGS / "benchmark" / "run.sh", "--benchmark")]


def _stage_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if "] stage " in line]


@pytest.mark.parametrize("script, option", CONFIG_OPTIONS,
                         ids=[f"{p.parent.name}{o}" for p, o in CONFIG_OPTIONS])  # fmt: skip
def test_a_malformed_config_stops_the_recipe_before_stage_0(tmp_path, script, option):
    config = tmp_path / "broken.json5"
    config.write_text('{model_type: "vits", train: {max_steps: 1,,}}')  # a json5 syntax error
    exp = tmp_path / "exp"
    out = run_recipe(script, option, str(config), "--exp_dir", str(exp), cwd=tmp_path)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("run.sh: error:") and f"{option} {config}: not a" in last and "json5" in last, out.stderr
    assert not _stage_lines(out.stderr) and "Traceback" not in out.stderr
    assert not exp.exists(), "a rejected call must not create or bind the exp dir"


def test_a_key_the_schema_lacks_is_named_before_stage_0(tmp_path):
    config = tmp_path / "typo.json5"
    config.write_text('{base_config: "%s", train: {max_stepz: 1}}' % (EGS / "tts" / "vits" / "conf" / "vits_tiny.json5"))
    out = run_recipe(EGS / "tts" / "vits" / "run.sh", "--config", str(config), "--exp_dir", str(tmp_path / "e"),
                     cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0 and not _stage_lines(out.stderr)
    assert "'train.max_stepz' (did you mean 'train.max_steps'?)" in out.stderr, out.stderr
    # the same config without the typo passes the check and the recipe goes on to its stages
    config.write_text('{base_config: "%s"}' % (EGS / "tts" / "vits" / "conf" / "vits_tiny.json5"))
    out = run_recipe(EGS / "tts" / "vits" / "run.sh", "--config", str(config), "--exp_dir", str(tmp_path / "e"),
                     "--stop_stage", "0", "--synthetic_speakers", "0", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "e" / ".done" / "stage0.data.done").is_file()


def test_a_familys_data_and_manifest_hooks_replace_the_shared_stages(tmp_path):
    """A family recipe's stage_data (calling the shared one, then its own work) and stage_manifests run; the
    shared manifests stage does not."""
    shutil.copy(TOY_TTS / "mini.json5", tmp_path / "toy.json5")
    recipe = tmp_path / "run.sh"
    recipe.write_text(f"""#!/usr/bin/env bash
recipe() {{
    family=toy_tts title="toy with hooks" about="stage hooks" speakers=none
    recipe_config config "toy_tts config" "*=toy.json5"
}}
stage_data() {{ shared_stage_data; echo family data stage >"$exp_dir/own_data"; }}
stage_manifests() {{ mkdir -p "$manifests"; echo family manifests stage >"$exp_dir/own_manifests"; }}
. "{TEMPLATE}"
""")
    exp = tmp_path / "exp"
    out = run_recipe(recipe, "--stop_stage", "1", "--synthetic_speakers", "0", "--exp_dir", str(exp), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (exp / "own_data").read_text() == "family data stage\n"
    assert (exp / "own_manifests").read_text() == "family manifests stage\n"
    assert not (exp / "manifests" / "train.jsonl").exists(), "the shared manifests stage ran instead of the hook"
    assert sorted(p.name for p in (exp / ".done").glob("*.done")) == ["stage0.data.done", "stage1.manifests.done"]


def test_template_names_missing_durations_on_a_corpus_without_them(tmp_path):
    """toy_tts without its aligner trains on extra.durations only; the mini corpus has none (and clips without
    transcripts): training must say that durations are missing."""
    out = run_recipe(TEMPLATE, "--config", str(TOY_TTS / "piper.json5"), "--stop_stage", "2", "--synthetic_speakers",
                     "0", "--exp_dir", str(tmp_path / "e"), "--train.max_steps", "1", cwd=tmp_path,
                     timeout=300)  # fmt: skip
    assert out.returncode != 0
    assert "stage 2 (train) failed" in out.stderr, out.stderr
    assert "no usable row" in out.stderr and "no extra['durations']" in out.stderr, out.stderr
    assert "empty text" not in out.stderr
    assert Path(tmp_path / "e" / "manifests" / "train.jsonl").is_file()  # stages 0-1 did run: the data is fine
