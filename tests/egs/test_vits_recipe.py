"""egs/tts/vits: options and errors of run.sh, the speaker table and job lists of its stages.

The full pipeline (stages 0-4 on the mini corpus, ~4 min on 2 CPU cores) is run by hand, not in the suite;
its model, trainer and inference pieces are tested in tests/models/vits.
"""

from __future__ import annotations

import json
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


def _write_jsonl(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_speaker_table(tmp_path):
    manifest = tmp_path / "train.jsonl"
    _write_jsonl(manifest, [{"id": "a", "path": "a.wav", "speaker": "s2", "text": "hi"},
                            {"id": "b", "path": "b.wav", "speaker": "s1", "text": "yes"},
                            {"id": "c", "path": "c.wav", "speaker": "s3", "text": ""}])
    out = subprocess.run([sys.executable, str(RECIPE / "local" / "speakers.py"), "--manifest", str(manifest)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["model.n_speakers=2", 'data.speakers=["s1", "s2"]']
    _write_jsonl(manifest, [{"id": "a", "path": "a.wav", "speaker": "s", "text": "hi"}])
    out = subprocess.run([sys.executable, str(RECIPE / "local" / "speakers.py"), "--manifest", str(manifest)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "model.n_speakers=0"


def test_job_lists_keep_known_speakers_and_pair_with_evaluation(tmp_path):
    lists = tmp_path / "shared"
    lists.mkdir()
    _write_jsonl(lists / "tts.jsonl", [{"id": "u1", "text": "Hello.", "speaker": "s1", "path": "/r/u1.wav", "prompt": "/p.wav"},
                                       {"id": "u2", "text": "Hi.", "speaker": "x", "path": "/r/u2.wav", "prompt": "/p.wav"}])
    _write_jsonl(lists / "vc.jsonl", [{"id": "u1_to_v", "path": "/r/u1.wav", "source_id": "u1", "speaker": "s2", "prompt": "/p.wav"},
                                      {"id": "u1_to_w", "path": "/r/u1.wav", "source_id": "u1", "speaker": "x", "prompt": "/p.wav"}])
    test = tmp_path / "test.jsonl"
    _write_jsonl(test, [{"id": "u1", "path": "/r/u1.wav", "speaker": "s1", "text": "Hello."}])
    out_dir = tmp_path / "lists"
    subprocess.run([sys.executable, str(RECIPE / "local" / "make_jobs.py"), "--lists", str(lists), "--test_manifest",
                    str(test), "--speakers", '["s1", "s2"]', "--out_dir", str(out_dir)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})  # as egs/utils/env.sh sets it for the recipe
    read = lambda name: [json.loads(l) for l in (out_dir / name).read_text().splitlines() if l.strip()]  # noqa: E731
    assert read("tts_jobs.jsonl") == [{"id": "u1", "text": "Hello.", "speaker": "s1"}]
    assert read("vc_jobs.jsonl") == [{"id": "u1_to_v", "path": "/r/u1.wav", "source_speaker": "s1", "speaker": "s2"}]
    assert [r["id"] for r in read("tts.jsonl")] == ["u1"] and [r["id"] for r in read("vc.jsonl")] == ["u1_to_v"]
    assert len((out_dir / "skipped.tsv").read_text().splitlines()) == 2
