"""The HierSpeech++ recipe's shell mechanics: options, stage ranges, .done markers, clear errors.

These run ``egs/tts/hierspeechpp/run.sh`` as a user would (bash, subprocess) on stage 0-1 work that takes
seconds; the model stages are exercised end to end in ``test_recipe_pipeline.py``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.helpers import MINI_CORPUS, REPO_ROOT

RUN_SH = REPO_ROOT / "egs" / "tts" / "hierspeechpp" / "run.sh"


def run_recipe(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "ECHELON_PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(RUN_SH), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


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


@pytest.mark.parametrize("recipe, stages", [
    ("tts/hierspeechpp", "0 data, 1 manifests, 2 features, 3 synth, 4 ttv, 5 speechsr, 6 inference, 7 evaluation"),
    ("tts/vits", "0 data, 1 manifests, 2 train, 3 inference, 4 evaluation"),
    ("vocoder/hifigan", "0 data, 1 manifests, 2 train, 3 inference, 4 evaluation"),
    ("benchmark", "0 data, 1 manifests, 2 benchmark"),
])
def test_a_stage_past_the_last_is_named_with_the_stage_list(tmp_path, recipe, stages):
    script = REPO_ROOT / "egs" / recipe / "run.sh"
    assert "--stage N --stop_stage M" in subprocess.run(["bash", str(script), "--help"], capture_output=True,
                                                        text=True, timeout=60).stdout
    env = {**os.environ, "ECHELON_PYTHON": sys.executable}
    for option in ("--stage", "--stop_stage"):
        out = subprocess.run(["bash", str(script), option, "9", "--exp_dir", str(tmp_path / "exp")], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode != 0
        assert f"there is no stage 9 ({option} 9)" in out.stderr and stages in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, "one line, no trace"
        assert not (tmp_path / "exp").exists()


def test_stage_range_markers_rerun_and_force(tmp_path):
    exp = tmp_path / "exp"
    out = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stage", "0", "--stop_stage", "0",
                     "--synthetic_speakers", "1", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert markers(exp) == ["stage0.data.done"], "only the asked stage may run"
    assert not (exp / "manifests").exists()
    synthetic_csv = exp / "data" / "synthetic" / "manifest.csv"
    if shutil.which("espeak-ng") or shutil.which("flite"):
        synthetic = list(csv.DictReader(synthetic_csv.open()))
        assert len(synthetic) == 4 and len({r["speaker"] for r in synthetic}) == 1
        assert all(r["source"].startswith("synthetic_") and "SYNTHETIC" in r["notes"] for r in synthetic)
        assert all(sf.info(str(synthetic_csv.parent / r["path"])).frames > 0 for r in synthetic)
        assert "SYNTHETIC" in out.stderr, "the synthetic top-up must be announced"

        # Stage 1 alone: seeded splits of the real clips; the synthetic speaker only ever trains.
        out = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stage", "1", "--stop_stage", "1",
                         cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert markers(exp) == ["stage0.data.done", "stage1.manifests.done"]
        splits = {s: [json.loads(l) for l in (exp / "manifests" / f"{s}.jsonl").read_text().splitlines()]
                  for s in ("train", "valid", "test")}  # fmt: skip
        real = list(csv.DictReader((MINI_CORPUS / "manifest.csv").open()))
        assert sum(len(v) for v in splits.values()) == len(real) + 4
        assert sum(r["speaker"].startswith("synth_") for r in splits["train"]) == 4
        assert not any(r["speaker"].startswith("synth_") for s in ("valid", "test") for r in splits[s])
    first = (exp / ".done" / "stage0.data.done").read_text()

    again = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stop_stage", "0", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "stage 0 (data): already done" in again.stderr
    assert (exp / ".done" / "stage0.data.done").read_text() == first, "a skipped stage must not rewrite its marker"

    forced = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stop_stage", "0", "--force",
                        "--synthetic_speakers", "0", cwd=tmp_path)  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert "stage 0 (data): start" in forced.stderr and "stage 1" not in forced.stderr
    assert not synthetic_csv.exists(), "--synthetic_speakers 0 leaves only the real clips"


def test_exp_dir_bound_to_one_corpus(tmp_path):
    exp = tmp_path / "exp"
    ok = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stop_stage", "0", "--synthetic_speakers", "0",
                    cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    clash = run_recipe("--dataset", "custom", "--data_dir", str(MINI_CORPUS / "vctk"), "--exp_dir", str(exp),
                       "--stop_stage", "0", cwd=tmp_path)  # fmt: skip
    assert clash.returncode != 0 and "holds dataset 'mini', not 'custom'" in clash.stderr


def test_wrong_data_paths_are_named(tmp_path):
    missing = tmp_path / "no_such_corpus"
    out = run_recipe("--dataset", "custom", "--data_dir", str(missing), "--exp_dir", str(tmp_path / "e1"),
                     "--stop_stage", "0", cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0 and f"{missing} is not a directory" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_recipe("--dataset", "custom", "--data_dir", str(empty), "--exp_dir", str(tmp_path / "e2"),
                     "--stop_stage", "0", cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0 and "has no audio files" in out.stderr
    out = run_recipe("--dataset", "mini", "--data_dir", str(empty), "--exp_dir", str(tmp_path / "e3"),
                     "--stop_stage", "0", cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0 and f"{empty}/manifest.csv does not exist" in out.stderr
    out = run_recipe("--dataset", "ljspeech", "--data_dir", str(empty), "--exp_dir", str(tmp_path / "e4"),
                     "--stop_stage", "0", "--download", "false", cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0 and f"{empty}/LJSpeech-1.1/metadata.csv" in out.stderr
    assert "stage 0 (data) failed" in out.stderr and not (tmp_path / "e4" / ".done").exists()


def test_missing_python_package_is_named(tmp_path):
    # An interpreter that cannot see the virtualenv's site-packages (-S) stands for a broken installation.
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = run_recipe("--dataset", "mini", "--exp_dir", str(tmp_path / "exp"), "--stop_stage", "0", cwd=tmp_path,
                     env={"ECHELON_PYTHON": str(fake)})  # fmt: skip
    assert out.returncode != 0
    assert "Python packages missing" in out.stderr and "torch" in out.stderr
    assert "make install" in out.stderr


def test_too_many_gpus_fail_before_training(tmp_path):
    import torch

    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has 2 GPUs: --ngpu 2 is valid here")
    exp = tmp_path / "exp"
    out = run_recipe("--dataset", "mini", "--exp_dir", str(exp), "--stage", "3", "--stop_stage", "3",
                     "--ngpu", "2", "--ssl_model", "random", cwd=tmp_path)  # fmt: skip
    assert out.returncode != 0
    assert "--ngpu 2 but only" in out.stderr and "stage 3 (synth) failed" in out.stderr
    assert not (exp / "synth" / "checkpoints").exists()


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
