"""faster-whisper backend with the Whisper models installed from PyPI, on real LJSpeech speech; long-utterance
pieces; the joined Whisper-base cache and its checksum; offline hub ids."""

from __future__ import annotations

from typing import Dict, List

import numpy as np
import pytest

from evaluation import whisper_models
from evaluation.asr import FasterWhisperASR, build_asr, split_long
from evaluation.base import at_rate, read_audio
from evaluation.hf_loading import ModelUnavailableError
from evaluation.intelligibility import error_counts
from evaluation.text_normalizer import normalize_english
from tests.evaluation.conftest import mini_manifest
from tests.helpers import MINI_CORPUS

LONG_IDS = ("LJ001-0001", "LJ001-0003", "LJ001-0005", "LJ001-0002")  # ~31 s with the pauses between them
SR = 16000


@pytest.fixture(scope="module")
def tiny_en() -> FasterWhisperASR:
    return build_asr("faster-whisper", "tiny.en")


@pytest.fixture(scope="module")
def lj_texts() -> Dict[str, str]:
    return {row["path"].split("/")[-1][:-4]: row["transcript"] for row in mini_manifest() if row["path"].startswith("ljspeech/")}


def _lj(utt_id: str) -> np.ndarray:
    wav, sr = read_audio(MINI_CORPUS / "ljspeech" / f"{utt_id}.wav")
    return at_rate(wav, sr, SR)


def test_split_long_cuts_in_pauses_and_keeps_every_sample() -> None:
    rng = np.random.default_rng(0)
    # 12 "words" of 4 s of noise separated by 0.3 s pauses: 51.3 s in all
    parts: List[np.ndarray] = []
    for _ in range(12):
        parts += [rng.uniform(-0.5, 0.5, 4 * SR).astype(np.float32), np.zeros(int(0.3 * SR), np.float32)]
    wav = np.concatenate(parts[:-1])
    pieces = split_long(wav, SR, max_seconds=30.0)
    assert len(pieces) == 2
    assert all(p.size <= 30 * SR for p in pieces)
    assert np.array_equal(np.concatenate(pieces), wav)
    cut = pieces[0].size
    assert np.all(wav[cut - 10 : cut + 10] == 0.0), "the cut falls inside a pause"
    short = rng.standard_normal(SR).astype(np.float32)
    assert len(split_long(short, SR)) == 1


def test_tiny_en_transcribes_real_speech(tiny_en, lj_texts) -> None:
    ids = ("LJ001-0002", "LJ001-0004", "LJ001-0006")
    hypotheses = tiny_en.transcribe([_lj(i) for i in ids])
    errors = [error_counts(normalize_english(lj_texts[i]), normalize_english(h)) for i, h in zip(ids, hypotheses)]
    wer = sum(e["wer_errors"] for e in errors) / sum(e["wer_words"] for e in errors)
    assert wer <= 0.15, list(zip(ids, hypotheses))


def test_long_utterance_is_chunked_not_rejected(tiny_en, lj_texts) -> None:
    pause = np.zeros(int(0.4 * SR), dtype=np.float32)
    wav = np.concatenate([np.concatenate([_lj(i), pause]) for i in LONG_IDS])
    assert wav.size > 30 * SR
    text = tiny_en.transcribe([wav])[0]
    reference = " ".join(lj_texts[i] for i in LONG_IDS)
    counts = error_counts(normalize_english(reference), normalize_english(text))
    assert counts["wer"] <= 0.15, text  # both sides of the cut are transcribed


def test_whisper_base_is_joined_once_and_checked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ECHELON_CACHE", str(tmp_path))
    path = whisper_models.whisper_base_dir()
    assert path == tmp_path / "whisper-base"
    assert whisper_models.sha256_of(path / "model.bin") == whisper_models.WHISPER_BASE_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file()
    stamp = (path / "model.bin").stat().st_mtime_ns
    assert whisper_models.resolve_whisper_model("base") == str(path)
    assert (path / "model.bin").stat().st_mtime_ns == stamp  # not joined a second time


def test_install_step_rejoins_a_damaged_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ECHELON_CACHE", str(tmp_path))
    path = whisper_models.whisper_base_dir()
    with (path / "model.bin").open("r+b") as handle:
        handle.write(b"damage")
    assert whisper_models.main([]) == 0
    assert whisper_models.sha256_of(path / "model.bin") == whisper_models.WHISPER_BASE_SHA256


def test_wrong_checksum_is_an_error_and_leaves_no_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ECHELON_CACHE", str(tmp_path))
    monkeypatch.setattr(whisper_models, "WHISPER_BASE_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailableError, match="sha256"):
        whisper_models.whisper_base_dir()
    assert not (tmp_path / "whisper-base" / "model.bin").exists()


def test_unreachable_hub_id_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="offline"):
        build_asr("faster-whisper", "Systran/faster-whisper-large-v3")


def test_directory_without_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="no model.bin"):
        build_asr("faster-whisper", str(tmp_path))
