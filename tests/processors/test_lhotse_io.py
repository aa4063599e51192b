"""Lhotse interop: ``echelon-preprocess --dataset lhotse:ljspeech`` on a real LJSpeech-1.1 slice gives manifests
with transcripts and durations (the same as our own ljspeech preparer); CutSets round-trip through
``--to_lhotse`` and ``--from_lhotse``; a segment cut is listed, not silently dropped; bad recipes are one line."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Sequence, Tuple

import pytest
import soundfile as sf

from bins.preprocess import main as preprocess
from processors.data.manifest import read_manifest

REAL = Path(os.environ.get("ECHELON_REAL_DATA", Path(__file__).resolve().parents[3] / "shared/data/real"))
LJ = REAL / "ljspeech_coqui"


@pytest.fixture()
def lj_slice(tmp_path) -> Path:
    """12 real LJSpeech clips laid out as LJSpeech-1.1 (metadata.csv id|raw|normalized + wavs/)."""
    return _lj_slice(tmp_path, 12)


def _lj_slice(tmp_path: Path, count: int, texts: Sequence[Tuple[str, str]] = ()) -> Path:
    """``count`` real LJSpeech clips as LJSpeech-1.1; clip i's (raw, normalized) text is ``texts[i]`` when given
    (else its transcript twice)."""
    if not LJ.is_dir():
        pytest.skip(f"real LJSpeech clips not found at {LJ}")
    with open(REAL / "manifest.csv", encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"] == "ljspeech_coqui"][:count]
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for i, row in enumerate(rows):
        name = Path(row["path"]).name
        shutil.copy(REAL / row["path"], root / "wavs" / name)
        raw, normalized = texts[i] if texts else (row["transcript"], row["transcript"])
        lines.append(f"{Path(name).stem}|{raw}|{normalized}\n")
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


def test_every_route_trains_on_the_normalised_text(tmp_path):
    """Raw and normalised texts differ (LJSpeech's two columns): ``lhotse:``, ``--from_lhotse`` and a Lhotse Shar
    folder streamed to VITS (its plan's filter and its items) all use the normalised one."""
    import types

    from lhotse import CutSet
    from lhotse.recipes import prepare_ljspeech

    from models.base.sampler import BatchingConfig
    from models.base.shar_stream import ShardStream
    from models.tts.vits.config import VITSExperimentConfig
    from models.tts.vits.dataset import VITSDataset
    from models.tts.vits.trainer import VITSTrainer
    from processors.data.shar import read_cut_metadata
    from utils.config import validate

    texts = [("Dr. Smith paid $5 for it.", "Doctor Smith paid five dollars for it."),
             ("Mr.  Cox was born in 1850.", "Mister Cox was born in eighteen fifty.")]
    root = _lj_slice(tmp_path, 2, texts)
    normalised = {Path(p).stem: n for p, (_, n) in zip(sorted((root / "wavs").iterdir()), texts)}
    assert preprocess(["--dataset", "lhotse:ljspeech", "--data_dir", str(root), "--out_dir", str(tmp_path / "a"),
                       "--valid", "0", "--test", "0"]) == 0
    manifests = prepare_ljspeech(root)
    cuts = CutSet.from_manifests(recordings=manifests["recordings"], supervisions=manifests["supervisions"])
    assert {c.supervisions[0].text for c in cuts} == {raw for raw, _ in texts}  # Lhotse's text is the raw one
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    assert preprocess(["--from_lhotse", str(tmp_path / "cuts.jsonl.gz"), "--out_dir", str(tmp_path / "b"),
                       "--valid", "0", "--test", "0"]) == 0
    for route in ("a", "b"):
        assert {e.id: e.text for e in read_manifest(tmp_path / route / "train.jsonl")} == normalised
    shar = tmp_path / "shar"
    shar.mkdir()
    cuts.to_shar(shar, fields={"recording": "flac"}, shard_size=1)  # what a Lhotse user hands to data.shar_dir
    by_cut = {c.id: normalised[c.recording_id] for c in cuts}
    assert {m.id: m.text for p in shar.glob("cuts.*") for m in read_cut_metadata(p)} == by_cut
    cfg = validate({"model_type": "vits"}, VITSExperimentConfig)
    shaper = VITSDataset(None, cfg.data, cfg.model.n_speakers, cfg.train.segment_samples)
    trainer = types.SimpleNamespace(cfg=cfg, _shaper=shaper)
    to_item = lambda cut: VITSTrainer.item_from_cut(trainer, cut)  # noqa: E731
    keep = lambda meta: VITSTrainer.keep_cut(trainer, meta)  # noqa: E731
    stream = ShardStream(shar, ["recording"], to_item, list, BatchingConfig(), 1, seed=0, keep=keep)
    stream.set_epoch(0)
    items = [item for batch in stream for item in batch]
    assert sorted(item["id"] for item in items) == sorted(by_cut)
    for item in items:
        assert item["text"].tolist() == shaper.checked_ids(by_cut[item["id"]], 0.0)
        raw = next(r for r, n in texts if n == by_cut[item["id"]])
        assert item["text"].tolist() != shaper.checked_ids(raw, 0.0)
