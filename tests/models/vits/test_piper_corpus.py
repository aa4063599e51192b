"""Preparer piper_corpus: the installed Piper joe voice (converted to Echelon VITS) speaks a few sentences of the
shipped CC0 list; manifests carry the text and the duration predictor's per-phoneme frames in ``extra``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bins import convert_piper
from processors.audio import load_audio
from processors.data.manifest import read_manifest
from models.tts.vits.piper_corpus import DEFAULT_TEXTS, read_sentences
from utils.registry import get


@pytest.fixture(scope="module")
def joe_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("joe") / "voice"
    assert convert_piper.main(["joe", str(out)]) == 0
    return out


def test_shipped_text_list_states_its_source_and_licence() -> None:
    header = [line for line in DEFAULT_TEXTS.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert any("Source:" in line for line in header) and any("CC0" in line for line in header)
    assert len(read_sentences(DEFAULT_TEXTS)) >= 50


def test_corpus_with_aligned_phoneme_durations(joe_dir, tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("# comment\nThe kettle whistled.\nA red kite drifted over the field.\n\nPlease close it.\n"
                     "...\n", encoding="utf-8")
    prepare = get("preparer", "piper_corpus")
    paths = prepare(tmp_path / "corpus", tmp_path / "manifests", valid=1, test=1, ckpt_dir=str(joe_dir),
                    texts=str(texts))
    entries = [e for split in ("train", "valid", "test") for e in read_manifest(paths[split])]
    assert sorted(e.text for e in entries) == ["A red kite drifted over the field.", "Please close it.",
                                               "The kettle whistled."]
    rejected = (tmp_path / "manifests" / "rejected.tsv").read_text(encoding="utf-8")
    assert "piper_0004" in rejected  # "..." has nothing to say (espeak-ng 1.52 reads "!!!" "exclamation"): listed
    for entry in entries:
        extra = entry.extra
        assert entry.sample_rate == 22050 and len(extra["durations"]) == len(extra["phoneme_ids"])
        assert all(d >= 0 for d in extra["durations"]) and extra["hop_length"] == 256
        samples = load_audio(entry.path, None).size
        assert sum(extra["durations"]) * extra["hop_length"] == samples
        assert 0.3 < entry.duration < 6.0 and extra["phonemes"].strip()
    stamp = Path(entries[0].path).stat().st_mtime_ns
    prepare(tmp_path / "corpus", tmp_path / "manifests", valid=1, test=1, ckpt_dir=str(joe_dir), texts=str(texts))
    assert Path(entries[0].path).stat().st_mtime_ns == stamp  # finished items are not synthesised again


def test_missing_checkpoint_option_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="ckpt_dir"):
        get("preparer", "piper_corpus")(tmp_path, tmp_path / "m")
