"""egs/tts/finetune: the recipe's options and errors, its readers stage on the shared real-speech set, and its
results table. echelon-finetune itself (minutes of CPU per run) is tested in tests/finetune, not here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from tests.helpers import REPO_ROOT, run_recipe

RECIPE = REPO_ROOT / "egs" / "tts" / "finetune"
RUN_SH = RECIPE / "run.sh"
REAL_DATA = Path(os.environ.get("ECHELON_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "real"))
LJSPEECH_SUBSETS = {"ljspeech_15s": 15.0, "ljspeech_30s": 30.0, "ljspeech_1min": 60.0}


def test_recipe_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = [RUN_SH, RECIPE / "local" / "stages.sh"]
    out = subprocess.run([shellcheck, "-s", "bash", "-e", "SC1091,SC2154,SC2034,SC2015", *map(str, scripts)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stdout


def test_help_lists_the_stages_and_options(tmp_path):
    out = run_recipe(RUN_SH, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for needle in ("0 readers", "1 base", "2 finetune", "3 results", "--real_data DIR", "--readers", "--cpu_minutes N",
                   "--threads N|all", "--finetune_args", "[exp/finetune]"):  # fmt: skip
        assert needle in out.stdout, needle
    assert not (tmp_path / "exp").exists(), "--help must not create anything"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--readers", "ljspeech nobody"], "--readers: unknown reader 'nobody'"),
        (["--cpu_minutes", "0"], "--cpu_minutes takes a positive number"),
        (["--cpu_minutes", "ten"], "--cpu_minutes takes a positive number"),
        (["--threads", "0"], "--threads takes a positive integer or all"),
        (["--dataset", "ljspeech"], "--dataset ljspeech does not apply to this recipe"),
        (["--data_dir", "/tmp"], "--data_dir /tmp does not apply to this recipe"),
        (["--train.max_steps", "5"], "--train.max_steps does not apply to this recipe"),
        (["--config", "conf.json5"], "--config conf.json5 does not apply to this recipe"),
        (["--real_data", "/no/such/root"], "--real_data /no/such/root: no manifest.csv there"),
        (["--stage", "3", "--stop_stage", "1"], "--stage 3 is after --stop_stage 1"),
        (["stray"], "unexpected argument 'stray'"),
    ],
)
def test_a_wrong_option_is_one_line(tmp_path, args, message):
    out = run_recipe(RUN_SH, *args, "--exp_dir", str(tmp_path / "exp"), cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
    assert message in out.stderr, out.stderr
    assert not (tmp_path / "exp").exists(), "a rejected call must not create the exp dir"


def test_an_unknown_option_is_named(tmp_path):
    out = run_recipe(RUN_SH, "--bogus", "1", cwd=tmp_path)
    assert out.returncode == 2 and "unknown option --bogus" in out.stderr, out.stderr


# ------------------------------------------------------------------------------------------------ readers
def manifest_rows(source: str, speaker: str) -> List[Dict[str, str]]:
    with (REAL_DATA / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["source"] == source and r["speaker"] == speaker]


def wav_names(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.glob("*.wav"))


def metadata(folder: Path) -> Dict[str, str]:
    lines = (folder / "metadata.csv").read_text(encoding="utf-8").splitlines()
    return dict(line.split("|", 1) for line in lines)


@pytest.fixture(scope="module")
def readers(tmp_path_factory) -> Path:
    if not (REAL_DATA / "manifest.csv").is_file():
        pytest.skip(f"the shared real-speech set is absent ({REAL_DATA}/manifest.csv; set ECHELON_REAL_DATA)")
    tmp = tmp_path_factory.mktemp("finetune")
    out = run_recipe(RUN_SH, "--stop_stage", "0", "--exp_dir", str(tmp / "exp"), "--real_data", str(REAL_DATA),
                     cwd=tmp)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return tmp / "exp" / "readers"


def test_ljspeech_readers_with_and_without_transcripts(readers):
    rows = manifest_rows("ljspeech_coqui", "ljspeech")
    expected = {Path(r["path"]).stem: " ".join(r["transcript"].split()) for r in rows}
    assert wav_names(readers / "ljspeech") == sorted(f"{stem}.wav" for stem in expected)
    assert metadata(readers / "ljspeech") == expected
    assert wav_names(readers / "ljspeech_notext") == wav_names(readers / "ljspeech")
    assert not list((readers / "ljspeech_notext").glob("*.csv")) and not list((readers / "ljspeech_notext").glob("*.txt"))
    for row in rows:  # the copies are the clips themselves
        name = Path(row["path"]).name
        assert (readers / "ljspeech" / name).read_bytes() == (REAL_DATA / row["path"]).read_bytes()


@pytest.mark.parametrize("speaker", ["p225", "p226", "p227", "p228"])
def test_vctk_readers_have_a_transcript_beside_each_wav(readers, speaker):
    folder = readers / f"vctk_{speaker}"
    rows = manifest_rows("vctk_autovc", f"vctk_{speaker}")
    assert rows and wav_names(folder) == sorted(Path(r["path"]).name for r in rows)
    for row in rows:
        text = (folder / f"{Path(row['path']).stem}.txt").read_text(encoding="utf-8").strip()
        assert text == " ".join(row["transcript"].split())
    sources = (folder / "SOURCES.md").read_text(encoding="utf-8")
    assert all(r["license"] in sources and Path(r["path"]).name in sources for r in rows)


@pytest.mark.parametrize("name, seconds", sorted(LJSPEECH_SUBSETS.items()))
def test_ljspeech_subsets_are_the_first_clips_until_their_duration(readers, name, seconds):
    rows = manifest_rows("ljspeech_coqui", "ljspeech")
    chosen = metadata(readers / name)
    count = len(chosen)
    assert list(chosen) == [Path(r["path"]).stem for r in rows[:count]], "a prefix in manifest order"
    durations = [float(r["duration"]) for r in rows[:count]]
    assert sum(durations[:-1]) < seconds <= sum(durations), "the last clip is the one that reaches the duration"
    assert wav_names(readers / name) == sorted(f"{stem}.wav" for stem in chosen)


def test_make_readers_errors_are_one_line_with_status_2(tmp_path):
    script = RECIPE / "local" / "make_readers.py"
    for args, message in ((["--real_data", str(tmp_path / "nowhere")], "no such directory"),
                          (["--real_data", str(tmp_path), "--readers", "ljspeech someone"], "unknown reader(s) someone"),
                          (["--real_data", str(tmp_path)], "no manifest.csv")):  # fmt: skip
        out = subprocess.run([sys.executable, str(script), *args, "--out_dir", str(tmp_path / "out")],
                             capture_output=True, text=True)  # fmt: skip
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ finetune
FAKE_FINETUNE = """#!/usr/bin/env bash
# bins.finetune recorded (its own tests are in tests/finetune); every other Python call is the real one
if [ "${1:-}" = -m ] && [ "${2:-}" = bins.finetune ]; then
    printf '%s\\n' "${*:3}" >>"$FAKE_LOG"
    while [ $# -gt 0 ]; do [ "$1" != --exp_dir ] || exp="$2"; shift; done
    mkdir -p "$exp" && echo started >"$exp/finetune.log"
    [ "${exp##*/}" != "$FAKE_FAIL" ] || exit "$FAKE_RC"
    exit 0
fi
exec PYTHON "$@"
"""


def test_finetune_stage_runs_each_reader_resumes_and_names_failures(tmp_path):
    if not (REAL_DATA / "manifest.csv").is_file():
        pytest.skip(f"the shared real-speech set is absent ({REAL_DATA}/manifest.csv; set ECHELON_REAL_DATA)")
    fake = tmp_path / "python"
    fake.write_text(FAKE_FINETUNE.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    exp, log = tmp_path / "exp", tmp_path / "calls.txt"
    env = {"ECHELON_PYTHON": str(fake), "FAKE_LOG": str(log), "FAKE_FAIL": "ljspeech_15s", "FAKE_RC": "2"}
    common = ("--exp_dir", str(exp), "--real_data", str(REAL_DATA), "--readers", "vctk_p225 ljspeech_15s vctk_p226",
              "--cpu_minutes", "7.5", "--threads", "2", "--finetune_args", "--max_steps 40")  # fmt: skip
    out = run_recipe(RUN_SH, "--stop_stage", "2", *common, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode != 0 and "echelon-finetune failed for ljspeech_15s" in out.stderr, out.stderr
    assert (exp / "joe" / "checkpoints").is_dir(), "stage 1 converted the base voice"
    calls = log.read_text().splitlines()
    assert [c.split("--exp_dir ")[1].split()[0] for c in calls] == [str(exp / r) for r in ("vctk_p225", "ljspeech_15s",
                                                                                          "vctk_p226")]  # fmt: skip
    assert calls[0] == (f"--audio_dir {exp}/readers/vctk_p225 --base_ckpt_dir {exp}/joe --exp_dir {exp}/vctk_p225 "
                        "--cpu_minutes 7.5 --threads 2 --seed 1234 --max_steps 40")
    # the rerun resumes every run that exists; Ctrl-C (130) stops the stage at that reader
    log.unlink()
    out = run_recipe(RUN_SH, "--stage", "2", "--stop_stage", "2", *common, cwd=tmp_path,
                     env={**env, "FAKE_FAIL": "vctk_p225", "FAKE_RC": "130"})  # fmt: skip
    assert out.returncode != 0 and "stopped during vctk_p225" in out.stderr, out.stderr
    assert log.read_text().splitlines() == [calls[0].replace(" --max_steps", " --resume --max_steps")]
    # a finished stage is skipped for the same readers and runs for other ones (its marker names its readers)
    log.unlink()
    stage2 = ("--stage", "2", "--stop_stage", "2", "--exp_dir", str(exp), "--real_data", str(REAL_DATA))
    errs = []
    for readers in ("vctk_p226", "vctk_p226", "ljspeech_15s"):
        out = run_recipe(RUN_SH, *stage2, "--readers", readers, cwd=tmp_path, env={**env, "FAKE_FAIL": "-"})
        assert out.returncode == 0, out.stderr
        errs.append(out.stderr)
    assert "already done" in errs[1] and "already done" not in errs[0] + errs[2], errs
    assert [c.split("--exp_dir ")[1].split()[0] for c in log.read_text().splitlines()] == [str(exp / "vctk_p226"),
                                                                                          str(exp / "ljspeech_15s")]


# ------------------------------------------------------------------------------------------------ results
def write_results(exp: Path, reader: str, seconds: float, given: int, asr: int, base: dict, best: dict,
                  recordings: dict, skipped: int) -> None:
    early = {"step": 100, "cpu_minutes": 4.0, "wer": best["wer"] + 0.02, "sim": best["sim"] - 0.05,
             "dnsmos": best["dnsmos"], "rate": best["rate"]}
    blob = {"data": {"utterances": given + asr, "seconds": seconds, "transcripts": {"given": given, "asr": asr},
                     "skipped": [{"item": f"take{i}.wav", "reason": "clipped"} for i in range(skipped)]},
            "base": base, "reader": recordings, "checkpoints": [early, {"step": 300, "cpu_minutes": 11.26, **best}],
            "best_step": 300, "notes": {"base voice": str(exp / "joe")}}
    (exp / reader).mkdir(parents=True)
    (exp / reader / "results.json").write_text(json.dumps(blob), encoding="utf-8")


def test_results_stage_writes_one_table_and_the_curve(tmp_path):
    exp = tmp_path / "exp"
    base = {"wer": 0.021, "sim": 0.612, "dnsmos": 3.214, "rate": 14.23}
    write_results(exp, "ljspeech_notext", 205.2, 0, 31, {**base, "buzz_db": 2.54}, {"wer": 0.047, "sim": 0.758,
                  "dnsmos": 3.011, "rate": 13.07, "buzz_db": 3.07}, {"wer": 0.013, "sim": 0.861, "dnsmos": 3.302,
                  "rate": 12.96}, 1)  # fmt: skip
    write_results(exp, "ljspeech_30s", 31.8, 5, 0, base, {"wer": 0.052, "sim": 0.703, "dnsmos": 2.95, "rate": 13.5},
                  {"wer": 0.0, "sim": 0.85, "dnsmos": 3.31, "rate": 13.04}, 0)  # fmt: skip
    out = run_recipe(RUN_SH, "--stage", "3", "--exp_dir", str(exp), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = (exp / "RESULTS.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ljspeech")]
    assert rows[0] == ("| ljspeech_notext | 3.42 | 0 / 31 | 11.3 (step 300) | 0.612 → 0.758 | 2.1 % → 4.7 % | "
                       "3.21 → 3.01 | 0.861 / 1.3 % / 3.30 | 14.2 / 13.1 / 13.0 | 2.5 → 3.1 | 1 |")  # recipe order first
    assert rows[1] == ("| ljspeech_30s | 0.53 | 5 / 0 | 11.3 (step 300) | 0.612 → 0.703 | 2.1 % → 5.2 % | "
                       "3.21 → 2.95 | 0.850 / 0.0 % / 3.31 | 14.2 / 13.5 / 13.0 | — → — | 0 |")  # buzz not measured
    curve = table.split("## SIM against minutes of data", 1)[1]
    assert "| ljspeech_30s | 0.53 | 0.612 | 0.703 | 0.850 | 5.2 % | 11.3 |" in curve
    assert "ljspeech_notext" not in curve, "only ljspeech and its subsets are on the curve"
    assert "![SIM against minutes of data](sim_vs_minutes.png)" in curve
    assert (exp / "sim_vs_minutes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_stage_without_runs_and_a_broken_file(tmp_path):
    out = run_recipe(RUN_SH, "--stage", "3", "--exp_dir", str(tmp_path / "exp"), cwd=tmp_path)
    assert out.returncode != 0 and "run stage 2 first" in out.stderr, out.stderr
    broken = tmp_path / "vctk_p225" / "results.json"
    broken.parent.mkdir()
    broken.write_text("{not json", encoding="utf-8")
    out = subprocess.run([sys.executable, str(RECIPE / "local" / "results_table.py"), str(broken)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and out.stderr.startswith(f"results_table.py: error: {broken}: not a readable"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
