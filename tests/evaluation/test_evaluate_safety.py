"""echelon-evaluate refuses what it cannot do before scoring, and resumes an interrupted run (issue 23)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from bins.evaluate import main
from tests.evaluation.test_evaluate_cli import setup_dirs  # noqa: F401 (module fixture)
from tests.helpers import REPO_ROOT


def _run(*args):
    cmd = [sys.executable, "-m", "bins.evaluate", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_reference_metric_without_references_is_one_line(setup_dirs, tmp_path):  # noqa: F811
    manifest = tmp_path / "no_refs.jsonl"
    rows = [json.loads(line) for line in (setup_dirs / "test.jsonl").read_text().splitlines()]
    manifest.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    run = _run("--system", f"copy={setup_dirs / 'copy'}", "--manifest", manifest, "--out_dir", tmp_path / "o",
               "--metrics", "mcd,log_mel_l1", "--quiet")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "echelon-evaluate: --metrics mcd,log_mel_l1: mcd needs reference audio (the manifest's 'path'), which no "
        "utterance has; give them or choose other metrics")
    assert not (tmp_path / "o").exists()


def test_out_dir_that_is_a_file_and_unknown_device_fail_before_scoring(setup_dirs, tmp_path):  # noqa: F811
    target = tmp_path / "taken"
    target.write_text("x")
    base = ["--system", f"copy={setup_dirs / 'copy'}", "--manifest", setup_dirs / "test.jsonl", "--metrics", "mcd"]
    run = _run(*base, "--out_dir", target / "eval")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"echelon-evaluate: --out_dir {target / 'eval'}: {target} is a file, not a directory"
    run = _run(*base, "--out_dir", tmp_path / "e", "--device", "cuda")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "cuda" in run.stderr


def test_skip_existing_scores_only_what_is_missing(setup_dirs, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "eval"
    args = ["--system", f"copy={setup_dirs / 'copy'}", "--manifest", str(setup_dirs / "test.jsonl"),
            "--out_dir", str(out), "--metrics", "mcd", "--no_plots", "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 scored, 0 failed"
    with open(out / "per_utterance.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    marked = [{**rows[0], "mcd": "123.5"}, rows[1]]  # a value no rescoring would give: proves reuse
    with open(out / "per_utterance.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(marked[:1])  # as an interrupted run leaves it: one row
    assert main(args + ["--skip_existing"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 scored, 0 failed, 1 already there (kept)"
    with open(out / "per_utterance.csv", newline="") as fh:
        again = {r["id"]: r for r in csv.DictReader(fh)}
    assert again[rows[0]["id"]]["mcd"] == "123.5" and float(again[rows[1]["id"]]["mcd"]) == float(rows[1]["mcd"])
