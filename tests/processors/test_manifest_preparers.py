"""processors.data manifests, splits and preparers on small corpora laid out from real mini-corpus clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from processors.audio import load_audio
from processors.data.manifest import ManifestEntry, ManifestError, read_manifest, split_entries, write_manifest
from processors.data.preparers import PreparerError
from tests.helpers import MINI_CORPUS
from utils.registry import get

CLIPS = sorted((MINI_CORPUS / "vctk").glob("*/*.wav"))


def _clip(dest: Path, index: int, sr: int = 16000, seconds: float = 0.5) -> Path:
    """Write the first ``seconds`` of a real clip (as wav or flac, by suffix)."""
    wav = load_audio(CLIPS[index % len(CLIPS)], sr)[: int(seconds * sr)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dest), wav, sr)
    return dest


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_manifest_roundtrip_relative_paths_and_errors(tmp_path):
    audio = _clip(tmp_path / "audio" / "a.wav", 0)
    outside = _clip(tmp_path.parent / f"{tmp_path.name}_outside.wav", 1)
    entries = [ManifestEntry("a", str(audio), "s1", "hello", 0.5, 16000), ManifestEntry("b", str(outside), "s2", "", 0.5, 16000)]
    path = write_manifest(entries, tmp_path / "m.jsonl")
    rows = _rows(path)
    assert rows[0]["path"] == "audio/a.wav" and Path(rows[1]["path"]).is_absolute()
    assert set(rows[0]) == {"id", "path", "speaker", "text", "duration", "sample_rate"}
    back = read_manifest(path)
    assert [Path(e.path).resolve() for e in back] == [audio.resolve(), outside.resolve()]
    with pytest.raises(ManifestError, match="duplicate id 'a'"):
        write_manifest(entries + entries[:1], tmp_path / "dup.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "path": "a.wav", "speeker": "s"}\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl:1: unknown field.*speeker"):
        read_manifest(tmp_path / "bad.jsonl")


def test_split_is_seeded_and_order_independent():
    entries = [ManifestEntry(f"u{i:03d}", f"{i}.wav", "s", "", 1.0, 16000) for i in range(40)]
    a = split_entries(entries, valid=0.1, test=3, seed=7)
    b = split_entries(list(reversed(entries)), valid=0.1, test=3, seed=7)
    c = split_entries(entries, valid=0.1, test=3, seed=8)
    ids = {k: [e.id for e in v] for k, v in a.items()}
    assert ids == {k: [e.id for e in v] for k, v in b.items()}
    assert ids != {k: [e.id for e in v] for k, v in c.items()}
    assert (len(ids["train"]), len(ids["valid"]), len(ids["test"])) == (33, 4, 3)
    assert sorted(sum(ids.values(), [])) == sorted(e.id for e in entries)
    with pytest.raises(ValueError, match="nothing left to train"):
        split_entries(entries[:2], valid=1, test=1)


def test_ljspeech(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    for i in range(5):
        _clip(root / "wavs" / f"LJ001-000{i}.wav", i, sr=22050)
    (root / "metadata.csv").write_text(
        "".join(f'LJ001-000{i}|Raw "text" {i}|Normalized text {i}\n' for i in range(5)), encoding="utf-8"
    )
    paths = get("preparer", "ljspeech")(tmp_path, tmp_path / "out", seed=1, valid=1, test=1)
    rows = sum((_rows(p) for p in paths.values()), [])
    assert len(rows) == 5 and {r["speaker"] for r in rows} == {"LJ"} and {r["sample_rate"] for r in rows} == {22050}
    assert sorted(r["text"] for r in rows)[0] == "Normalized text 0"
    assert all(abs(r["duration"] - 0.5) < 1e-3 for r in rows)


def test_vctk_092_layout(tmp_path):
    root = tmp_path / "VCTK-Corpus-0.92"
    for spk, n in (("p225", 3), ("p315", 2)):
        for u in range(1, n + 1):
            _clip(root / "wav48_silence_trimmed" / spk / f"{spk}_00{u}_mic1.flac", u)
            _clip(root / "wav48_silence_trimmed" / spk / f"{spk}_00{u}_mic2.flac", u)
            if spk != "p315":  # p315 has no transcripts in the real corpus
                (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (root / "txt" / spk / f"{spk}_00{u}.txt").write_text(f"Sentence {u}.\n")
    paths = get("preparer", "vctk")(tmp_path, tmp_path / "out", seed=3, valid=1, test=1)
    rows = {r["id"]: r for p in paths.values() for r in _rows(p)}
    assert sorted(rows) == ["p225_001", "p225_002", "p225_003", "p315_001", "p315_002"]
    assert rows["p225_002"]["text"] == "Sentence 2." and rows["p315_001"]["text"] == ""
    assert rows["p225_001"]["path"].endswith("_mic1.flac")


def test_libritts_uses_subset_splits(tmp_path):
    root = tmp_path / "LibriTTS"
    for n, subset in enumerate(("train-clean-100", "dev-clean", "test-clean")):
        for u in range(2):
            wav = _clip(root / subset / f"{19 + n}" / "198" / f"{19 + n}_198_00000{u}_00000{u}.wav", u, sr=24000)
            wav.with_suffix(".normalized.txt").write_text(f"{subset} {u}")
    paths = get("preparer", "libritts")(tmp_path, tmp_path / "out")
    splits = {k: _rows(v) for k, v in paths.items()}
    assert {r["text"].split()[0] for r in splits["valid"]} == {"dev-clean"}
    assert {r["text"].split()[0] for r in splits["test"]} == {"test-clean"}
    assert {r["speaker"] for r in splits["train"]} == {"19"} and len(splits["train"]) == 2


def test_folder_with_transcripts_and_bad_files(tmp_path):
    root = tmp_path / "corpus"
    for u in range(4):
        _clip(root / "alice" / f"a{u}.wav", u).with_suffix(".txt").write_text(f"alice  says\n{u}")
    _clip(root / "top.wav", 5)
    (root / "bob").mkdir()
    (root / "bob" / "empty.wav").write_bytes(b"")
    paths = get("preparer", "folder")(root, tmp_path / "out", seed=0, valid=1, test=1)
    rows = {r["id"]: r for p in paths.values() for r in _rows(p)}
    assert sorted(rows) == ["alice_a0", "alice_a1", "alice_a2", "alice_a3", "top"]
    assert rows["alice_a1"]["text"] == "alice says 1" and rows["top"]["speaker"] == "corpus"
    rejected = (tmp_path / "out" / "rejected.tsv").read_text()
    assert rejected.startswith("bob_empty\t") and "empty" in rejected


def test_kaldi_dir(tmp_path):
    for u in range(4):
        _clip(tmp_path / "wav" / f"spk1_u{u}.wav", u)
    (tmp_path / "wav.scp").write_text("".join(f"spk1_u{u} wav/spk1_u{u}.wav\n" for u in range(4)))
    (tmp_path / "text").write_text("spk1_u0 hello there\nspk1_u1 general kenobi\n")
    (tmp_path / "utt2spk").write_text("".join(f"spk1_u{u} speaker1\n" for u in range(4)))
    paths = get("preparer", "kaldi")(tmp_path, tmp_path / "out", valid=1, test=1)
    rows = {r["id"]: r for p in paths.values() for r in _rows(p)}
    assert rows["spk1_u0"]["text"] == "hello there" and rows["spk1_u3"]["text"] == ""
    assert {r["speaker"] for r in rows.values()} == {"speaker1"}
    (tmp_path / "wav.scp").write_text("spk1_u0 sox a.wav -t wav - |\n")
    with pytest.raises(PreparerError, match="piped command"):
        get("preparer", "kaldi")(tmp_path, tmp_path / "out2")


def test_mini_corpus(tmp_path):
    paths = get("preparer", "mini")(MINI_CORPUS, tmp_path, seed=1234)
    rows = sum((_rows(p) for p in paths.values()), [])
    assert len(rows) == len(list(MINI_CORPUS.glob("*/*.wav")) + CLIPS)
    lj = next(r for r in rows if r["id"] == "ljspeech_LJ001-0001")
    assert lj["sample_rate"] == 22050 and lj["text"] and lj["duration"] == pytest.approx(
        sf.info(str(MINI_CORPUS / "ljspeech" / "LJ001-0001.wav")).duration, abs=1e-3
    )
    assert all(Path(tmp_path, r["path"]).resolve().is_file() for r in rows)


def test_missing_corpus_names_layout_and_url(tmp_path):
    for name, url in (("ljspeech", "LJSpeech-1.1.tar.bz2"), ("vctk", "VCTK-Corpus-0.92.zip"), ("libritts", "openslr.org")):
        with pytest.raises(PreparerError, match="offline") as err:
            get("preparer", name)(tmp_path / "nothing", tmp_path / "out")
        assert url in str(err.value) and str(tmp_path / "nothing") in str(err.value)
