"""Lhotse interop: ``echelon-preprocess --dataset lhotse:ljspeech`` on a real LJSpeech-1.1 slice gives manifests
with transcripts and durations (the same as our own ljspeech preparer); CutSets round-trip through
``--to_lhotse`` and ``--from_lhotse``; a segment cut is listed, not silently dropped; bad recipes are one line."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from bins.preprocess import main as preprocess
from processors.data.manifest import read_manifest

REAL = Path(os.environ.get("ECHELON_REAL_DATA", Path(__file__).resolve().parents[3] / "shared/data/real"))
LJ = REAL / "ljspeech_coqui"


@pytest.fixture()
def lj_slice(tmp_path) -> Path:
    """12 real LJSpeech clips laid out as LJSpeech-1.1 (metadata.csv id|raw|normalized + wavs/)."""
    if not LJ.is_dir():
        pytest.skip(f"real LJSpeech clips not found at {LJ}")
    with open(REAL / "manifest.csv", encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"] == "ljspeech_coqui"][:12]
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for row in rows:
        name = Path(row["path"]).name
        shutil.copy(REAL / row["path"], root / "wavs" / name)
        lines.append(f"{Path(name).stem}|{row['transcript']}|{row['transcript']}\n")
    (root / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    return root


def test_lhotse_ljspeech_recipe_gives_transcripts_and_durations(lj_slice, tmp_path, capsys):
    out = tmp_path / "lhotse"
    assert preprocess(["--dataset", "lhotse:ljspeech", "--data_dir", str(lj_slice), "--out_dir", str(out),
                       "--valid", "2", "--test", "2"]) == 0
    entries = {e.id: e for split in ("train", "valid", "test") for e in read_manifest(out / f"{split}.jsonl")}
    assert len(entries) == 12 and len(read_manifest(out / "valid.jsonl")) == 2
    for entry in entries.values():
        info = sf.info(entry.path)
        assert entry.text and entry.sample_rate == 22050  # Lhotse's LJSpeech recipe names no speaker
        assert entry.duration == pytest.approx(info.frames / info.samplerate, abs=1e-3)
    assert entries["LJ001-0001"].text.startswith("Printing, in the only sense")
    # our own preparer reads the same slice to the same manifest rows (ids, texts, durations)
    ours = tmp_path / "ours"
    assert preprocess(["--dataset", "ljspeech", "--data_dir", str(lj_slice.parent), "--out_dir", str(ours),
                       "--valid", "2", "--test", "2"]) == 0
    mine = {e.id: e for split in ("train", "valid", "test") for e in read_manifest(ours / f"{split}.jsonl")}
    assert {i: (e.text, e.duration) for i, e in mine.items()} == {i: (e.text, e.duration) for i, e in entries.items()}


def test_cutsets_round_trip_and_segments_are_listed(lj_slice, tmp_path):
    from lhotse import CutSet

    out = tmp_path / "m"
    assert preprocess(["--dataset", "ljspeech", "--data_dir", str(lj_slice), "--out_dir", str(out), "--valid", "2",
                       "--test", "2", "--to_lhotse"]) == 0
    cuts = CutSet.from_file(out / "train_cuts.jsonl.gz")
    assert len(cuts) == 8 and all(c.supervisions[0].text for c in cuts)
    segment = cuts[0].truncate(duration=0.5)
    CutSet.from_cuts([*cuts, segment.with_id("seg")]).to_file(tmp_path / "cuts.jsonl.gz")
    back = tmp_path / "back"
    assert preprocess(["--from_lhotse", str(tmp_path / "cuts.jsonl.gz"), "--out_dir", str(back), "--valid", "1",
                       "--test", "1"]) == 0
    again = sorted((e.id, e.text, e.duration) for s in ("train", "valid", "test") for e in read_manifest(back / f"{s}.jsonl"))
    assert again == sorted((e.id, e.text, e.duration) for e in read_manifest(out / "train.jsonl"))
    assert (back / "rejected.tsv").read_text().startswith("seg\t")


def test_unknown_recipe_or_option_is_one_line(tmp_path, capsys):
    assert preprocess(["--dataset", "lhotse:no_such_corpus", "--data_dir", str(tmp_path), "--out_dir", str(tmp_path)]) == 2
    assert preprocess(["--dataset", "lhotse:ljspeech", "--data_dir", str(tmp_path), "--out_dir", str(tmp_path),
                       "bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no recipe 'no_such_corpus'" in err[0] and "bogus" in err[1]
