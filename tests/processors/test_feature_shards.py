"""Sharded extraction: disjoint shards that together cover every item once, a merge that refuses unfinished
shards and combines the bad items, per-run bad lists never overwritten, resume that redoes only invalid files,
and a real 2-rank ``torchrun`` launch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bins.extract_features import main as extract_cli
from processors.audio import load_audio
from processors.data.extract import extract_features
from processors.data.manifest import read_manifest
from processors.data.shards import Shard, ShardError, merge_shards, shard_from_env
from processors.features import build_extractor, feature_path, load_feature
from processors.spectrogram import HierSpeechLogMel
from tests.helpers import REPO_ROOT, write_clip_manifest



@pytest.fixture()
def manifest(tmp_path) -> Path:
    """6 short real clips (0.4 s) and 2 unreadable files, as a manifest."""
    return write_clip_manifest(tmp_path, 6, 0.4, bad=("bad_a", "bad_b"))


def _mel():
    return [build_extractor("mel")]


def test_shards_are_disjoint_cover_everything_and_ignore_input_order(manifest):
    entries = read_manifest(manifest)
    for count in (1, 2, 3, 8):
        parts = [Shard(i, count).select(entries) for i in range(count)]
        ids = [e.id for part in parts for e in part]
        assert sorted(ids) == sorted(e.id for e in entries) and len(ids) == len(set(ids))
        again = [Shard(i, count).select(list(reversed(entries))) for i in range(count)]
        assert [[e.id for e in p] for p in parts] == [[e.id for e in p] for p in again]
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Shard(1, 2)
    assert shard_from_env({}) is None
    with pytest.raises(ValueError):
        Shard.parse("2/2")


def test_two_shards_then_merge(manifest, tmp_path):
    entries = read_manifest(manifest)
    out = tmp_path / "features"
    first = extract_features(entries, out, _mel(), shard=Shard(0, 2), run_id="r0")
    assert first.merged is None
    with pytest.raises(ShardError, match=r"shard 1 \(never started\) of 2 not finished"):
        merge_shards(out, entries, [x.describe() for x in _mel()])
    assert extract_cli(["--manifest", str(manifest), "--out_dir", str(out), "--features", "mel", "--merge"]) == 4
    second = extract_features(entries, out, _mel(), shard=Shard(1, 2), run_id="r1")

    processed = first.done + list(first.bad) + second.done + list(second.bad)
    assert sorted(processed) == sorted(e.id for e in entries)  # every item exactly once
    assert set(first.bad) | set(second.bad) == {"bad_a", "bad_b"} and not set(first.bad) & set(second.bad)
    for entry in entries[:6]:
        wav = load_audio(entry.path, 16000)
        expected = HierSpeechLogMel()(torch.from_numpy(wav)[None])[0]
        torch.testing.assert_close(load_feature(out, "mel", entry.id), expected)

    assert extract_cli(["--manifest", str(manifest), "--out_dir", str(out), "--features", "mel", "--merge",
                        "--run_id", "m1"]) == 1  # two bad items: a failure unless allowed
    assert extract_cli(["--manifest", str(manifest), "--out_dir", str(out), "--features", "mel", "--merge",
                        "--run_id", "m1", "--allow_failures"]) == 0
    index = json.loads((out / "index.json").read_text())
    summary = index["jobs"][index["latest"]]
    assert (summary["items"], summary["done"], summary["bad"], summary["num_shards"]) == (8, 6, 2, 2)
    current = [line.split("\t")[0] for line in (out / "bad_items.tsv").read_text().splitlines()]
    assert current == ["bad_a", "bad_b"]
    assert (out / summary["bad_items"]).read_text() == (out / "bad_items.tsv").read_text()
    run_dir = out / "runs" / first.job
    per_run = sorted(p.name for p in run_dir.glob("bad_items.shard-*.tsv"))
    assert per_run == ["bad_items.shard-00000-of-00002.r0.tsv", "bad_items.shard-00001-of-00002.r1.tsv"]

    # A rerun of shard 0 with the same run id keeps the earlier list and writes a new one.
    earlier = (run_dir / per_run[0]).read_text()
    extract_features(entries, out, _mel(), shard=Shard(0, 2), run_id="r0")
    assert (run_dir / per_run[0]).read_text() == earlier
    assert (run_dir / "bad_items.shard-00000-of-00002.r0.1.tsv").is_file()


def test_resume_redoes_only_missing_or_broken_files_and_merge_checks_files(manifest, tmp_path):
    entries = read_manifest(manifest)
    out = tmp_path / "features"
    extract_features(entries, out, _mel())
    stamps = {p: p.stat().st_mtime_ns for p in (out / "mel").glob("*.pt")}
    broken = feature_path(out, "mel", "c2")
    broken.write_bytes(broken.read_bytes()[:100])  # truncated, as by a copy that did not finish
    feature_path(out, "mel", "c4").unlink()
    again = extract_features(entries, out, _mel())
    assert sorted(again.done) == ["c2", "c4"] and sorted(again.skipped) == ["c0", "c1", "c3", "c5"]
    assert load_feature(out, "mel", "c2").shape[0] == 80
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.stem not in ("c2", "c4"))
    feature_path(out, "mel", "c1").unlink()  # lost after the shards finished: the merge must notice
    with pytest.raises(ShardError, match="mel/c1"):
        merge_shards(out, entries, [x.describe() for x in _mel()])


def test_torchrun_two_ranks_shard_and_rank0_merges(manifest, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this python")
    out = tmp_path / "features"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "0", "-m", "bins.extract_features",
           "--manifest", str(manifest), "--out_dir", str(out), "--features", "mel", "--merge_wait", "120", "--allow_failures"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reports = sorted((out / "runs").glob("*/shard-*.json"))
    assert [json.loads(p.read_text())["status"] for p in reports] == ["finished", "finished"]
    assert sum(json.loads(p.read_text())["items"] for p in reports) == 8
    index = json.loads((out / "index.json").read_text())
    assert index["jobs"][index["latest"]]["num_shards"] == 2 and index["jobs"][index["latest"]]["done"] == 6
    assert all(feature_path(out, "mel", f"c{n}").is_file() for n in range(6))
