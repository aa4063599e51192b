"""The HierSpeech++ recipe's shell mechanics: options, stage ranges, .done markers, clear errors.

These run ``egs/tts/hierspeechpp/run.sh`` as a user would (bash, subprocess) on stage 0-1 work that takes
seconds; the model stages are exercised end to end in ``test_recipe_pipeline.py``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.helpers import MINI_CORPUS, REPO_ROOT
from tests.helpers import run_recipe as run_script

RUN_SH = REPO_ROOT / "egs" / "tts" / "hierspeechpp" / "run.sh"


def run_recipe(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_script(RUN_SH, *args, cwd=cwd, env=env, timeout=timeout)


def markers(exp: Path) -> list[str]:
    done = exp / ".done"
    return sorted(p.name for p in done.glob("*.done")) if done.is_dir() else []


def test_help_lists_stages_and_forwarding(tmp_path):
    out = run_recipe("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for needle in ("--stage N --stop_stage M", "--dataset NAME", "--ssl_model", "--ngpu", "RANDOMLY INITIALISED",
                   "--synth_args", "config override", "7 evaluation"):  # fmt: skip
        assert needle in out.stdout, needle
    assert not (tmp_path / "exp").exists(), "--help must not create anything"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus", "1"], "unknown option --bogus"),
        (["--dataset", "timit"], "--dataset must be one of"),
        (["--stage", "5", "--stop_stage", "2"], "--stage 5 is after --stop_stage 2"),
        (["--stop_stage", "9"], "stages run from 0 to 7"),
        (["--force", "maybe"], "takes true or false"),
        (["--ngpu"], "needs a value"),
        (["stray"], "unexpected argument 'stray'"),
        (["--dataset", "custom"], "--dataset custom needs --data_dir"),
    ],
)
def test_bad_options_fail_clearly(tmp_path, args, message):
    out = run_recipe(*args, "--exp_dir", str(tmp_path / "exp"), cwd=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert not (tmp_path / "exp").exists(), "a rejected call must not create or bind the exp dir"


def test_rejected_call_does_not_bind_the_exp_dir(tmp_path):
    """Options the recipe checks after the shared ones (--nj, --conf_set, ...) fail before EXP_DIR is bound."""
    exp = tmp_path / "exp"
    custom = ("--dataset", "custom", "--data_dir", str(MINI_CORPUS / "vctk"), "--exp_dir", str(exp), "--stop_stage", "0")
    for bad_option in (("--nj", "0"), ("--conf_set", "huge"), ("--sr_train", "maybe"), ("--sr_weights", "mine")):
        out = run_recipe(*custom, *bad_option, cwd=tmp_path)
        assert out.returncode != 0 and bad_option[0] in out.stderr, out.stderr
        assert not exp.exists(), f"{bad_option}: the rejected call created {exp}"
    ok = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stop_stage", "0", "--synthetic_speakers", "0",
                    cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (exp / "recipe_settings").read_text().startswith("dataset=mini\n")


@pytest.mark.parametrize("script", sorted((REPO_ROOT / "egs").glob("**/run.sh")), ids=lambda p: p.parent.name)
def test_a_stage_past_the_last_is_named_with_the_stage_list(tmp_path, script):
    env = {**os.environ, "ECHELON_PYTHON": sys.executable}
    helped = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=60, env=env)
    stages = re.findall(r"^  (\d+) +([a-z_0-9]+)", helped.stdout, flags=re.MULTILINE)  # the documented stages
    assert len(stages) >= 3, helped.stdout
    listed = ", ".join(f"{n} {name}" for n, name in stages)
    for option in ("--stage", "--stop_stage"):
        out = subprocess.run(["bash", str(script), option, "99", "--exp_dir", str(tmp_path / "exp")], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode != 0
        assert f"there is no stage 99 ({option} 99): stages run from 0 to {stages[-1][0]}: {listed}" in out.stderr, \
            out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, "one line, no trace"
        assert not (tmp_path / "exp").exists()


def test_recipe_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    # Every recipe script: the HierSpeech++, VITS and vocoder recipes and the egs/utils pieces they share.
    scripts = sorted((REPO_ROOT / "egs").rglob("*.sh")) + sorted((REPO_ROOT / "utils").glob("*.sh"))
    assert RUN_SH in scripts and len(scripts) >= 10, scripts
    # Variables crossing sourced files (SC2154/SC2034), unfollowed sources (SC1091) and the deliberate
    # "check && check || die" idiom (SC2015) are not defects here.
    out = subprocess.run([shellcheck, "-s", "bash", "-e", "SC1091,SC2154,SC2034,SC2015", *map(str, scripts)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stdout


def test_missing_python_side_of_a_stage_is_named(tmp_path):
    # A checkout without a stage's module (e.g. a model not merged yet) must say which file is missing.
    script = (f'. "{REPO_ROOT}/egs/utils/stage.sh"; repo_root="{tmp_path}"; '
              'require_python_module models.ttv.hierspeechpp_ttv.trainer "the Text-to-Vec trainer"; echo reached')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert out.returncode != 0 and "reached" not in out.stdout
    assert "the Text-to-Vec trainer is missing" in out.stderr
    assert str(tmp_path / "models/ttv/hierspeechpp_ttv/trainer.py") in out.stderr


def test_a_failing_command_inside_a_stage_fails_the_stage(tmp_path):
    """run_stage must not report a stage done when a command before its last one failed."""
    script = f"""
        . "{REPO_ROOT}/egs/utils/stage.sh"
        exp_dir="{tmp_path}"; stage=0; stop_stage=0
        halfway() {{ false; echo "reached the end"; }}
        run_stage 0 halfway halfway
    """
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "reached the end" not in out.stdout
    assert "stage 0 (halfway) failed" in out.stderr
    assert not (tmp_path / ".done" / "stage0.halfway.done").exists()


def test_rerun_flag_resumes_only_an_unfinished_stage(tmp_path):
    """--skip_existing only when the stage stopped midway before; a fresh run, a removed marker or --force
    replace earlier outputs (--overwrite), so a retrained model's outputs are never mixed with old ones."""
    def run(fails: bool, force: bool = False) -> str:
        script = f"""
            . "{REPO_ROOT}/egs/utils/stage.sh"
            exp_dir="{tmp_path}"; stage=0; stop_stage=0; force={str(force).lower()}
            infer() {{ echo "flag $(rerun_flag)"; {"false" if fails else "true"}; }}
            run_stage 0 infer infer
        """
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert (out.returncode != 0) == fails, out.stderr
        return out.stdout.strip()

    marker = tmp_path / ".done" / "stage0.infer.done"
    assert run(fails=True) == "flag --overwrite"  # first run, stopped midway
    assert run(fails=False) == "flag --skip_existing"  # resumed: finishes what is missing
    assert marker.exists() and not (tmp_path / ".done" / "stage0.infer.started").exists()
    marker.unlink()
    assert run(fails=False) == "flag --overwrite"  # marker removed after a finished run: run afresh
    assert run(fails=True, force=True) == "flag --overwrite"  # --force never resumes
    assert run(fails=True, force=True) == "flag --overwrite"  # ... not even after its own stop
