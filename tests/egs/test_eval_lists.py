"""The recipe's seeded TTS/VC/SR job lists (egs/TEMPLATE/tts/local/make_eval_lists.py) on the mini corpus."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import MINI_CORPUS, REPO_ROOT, load_script

SCRIPT = REPO_ROOT / "egs" / "TEMPLATE" / "tts" / "local" / "make_eval_lists.py"


def mini_manifests(root: Path, synthetic: int = 0) -> Path:
    """train/valid/test JSONL from the real mini corpus: every speaker's first clip is a test item."""
    rows = list(csv.DictReader((MINI_CORPUS / "manifest.csv").open()))
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    seen: set[str] = set()
    for row in rows:
        item_id = Path(row["path"]).with_suffix("").as_posix().replace("/", "_")
        entry = {"id": item_id, "path": str(MINI_CORPUS / row["path"]),
                 "speaker": row["speaker"], "text": row["transcript"], "duration": float(row["duration"]),
                 "sample_rate": int(row["sr"])}  # fmt: skip
        splits["test" if row["speaker"] not in seen else "train"].append(entry)
        seen.add(row["speaker"])
    for n in range(synthetic):  # a synthetic voice that only trains
        splits["train"].append({"id": f"synth_x_{n}", "path": str(MINI_CORPUS / rows[0]["path"]),
                                "speaker": "synth_x", "text": "hello", "duration": 1.0, "sample_rate": 22050,
                                "source": "synthetic_espeak-ng"})  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    for name, items in splits.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return root


def test_lists_are_seeded_and_never_leak_the_target(tmp_path):
    lists = load_script(SCRIPT)
    manifests = mini_manifests(tmp_path / "m", synthetic=3)
    test = lists.read_manifest(manifests / "test.jsonl")
    pool = [r for s in ("train", "valid", "test") for r in lists.read_manifest(manifests / f"{s}.jsonl")]
    first = lists.build_lists(test, pool, seed=7, max_items=None)
    assert first == lists.build_lists(list(reversed(test)), list(reversed(pool)), seed=7, max_items=None)
    by_id = {r["id"]: r for r in pool}
    speaker_of = {r["path"]: r["speaker"] for r in pool}
    with_text = [r for r in test if r["text"].strip()]
    assert len(first["tts"]) == len(with_text) > 0
    for job in first["tts"]:
        assert job["prompt_id"] != job["id"] and by_id[job["prompt_id"]]["speaker"] == job["speaker"]
        assert job["path"] == by_id[job["id"]]["path"] and job["text"] == by_id[job["id"]]["text"]
    assert len(first["vc"]) == len(test)
    for job in first["vc"]:
        assert job["speaker"] != by_id[job["source_id"]]["speaker"] and speaker_of[job["prompt"]] == job["speaker"]
        assert job["speaker"] != "synth_x", "real target voices are preferred to synthetic ones"
        assert job["id"] == f"{Path(job['path']).stem}_to_{Path(job['prompt']).stem}"
    (sr,) = first["sr"]
    assert sr["id"] in {r["id"] for r in test} and by_id[sr["id"]]["sample_rate"] >= 16000
    others = [lists.build_lists(test, pool, seed=s, max_items=None)["vc"] for s in range(1, 6)]
    assert any(o != first["vc"] for o in others), "the seed must matter"


def test_cli_writes_lists_and_rejects_missing_manifest(tmp_path, capsys):
    lists = load_script(SCRIPT)
    manifests = mini_manifests(tmp_path / "m")
    out = tmp_path / "lists"
    assert lists.main(["--manifest_dir", str(manifests), "--out_dir", str(out), "--seed", "3"]) == 0
    pairs = [line.split("\t") for line in (out / "vc_pairs.tsv").read_text().splitlines()]
    vc = [json.loads(line) for line in (out / "vc.jsonl").read_text().splitlines()]
    assert [(j["path"], j["prompt"]) for j in vc] == [tuple(p) for p in pairs]
    assert Path((out / "sr_inputs.txt").read_text().strip()).is_file()
    assert lists.main(["--manifest_dir", str(tmp_path / "nowhere"), "--out_dir", str(out)]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_single_speaker_corpus_has_no_vc_jobs(tmp_path):
    lists = load_script(SCRIPT)
    rows = [{"id": f"u{i}", "path": str(MINI_CORPUS / "ljspeech" / f"LJ001-000{i}.wav"), "speaker": "lj",
             "text": "words", "sample_rate": 22050, "duration": 2.0} for i in range(1, 5)]  # fmt: skip
    result = lists.build_lists(rows[:1], rows, seed=1, max_items=None)
    assert result["vc"] == [] and [s["list"] for s in result["skipped"]] == ["vc"]
    assert len(result["tts"]) == 1
