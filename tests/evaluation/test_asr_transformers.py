"""Whisper and CTC backends through transformers, with tiny random models built locally (plumbing only)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.asr import CTCASR, WhisperASR, build_asr
from evaluation.hf_loading import ModelUnavailableError
from tests.evaluation.tiny_models import make_tiny_ctc, make_tiny_whisper


def _noise(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return make_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory):
    return make_tiny_ctc(tmp_path_factory.mktemp("tiny_ctc"))


def test_whisper_backend_batches_like_single_items(whisper_dir) -> None:
    asr = build_asr("whisper", str(whisper_dir), batch_size=2)
    assert isinstance(asr, WhisperASR)
    wavs = _noise([16000, 4000, 24000])
    batched = asr.transcribe(wavs)
    assert len(batched) == 3 and all(isinstance(t, str) for t in batched)
    assert batched == [asr.transcribe([w])[0] for w in wavs]  # order restored after length sorting


def test_whisper_decodes_utterances_over_30_s_in_pieces(whisper_dir) -> None:
    asr = build_asr("whisper", str(whisper_dir))
    seen = []
    decode = asr._transcribe_batched
    asr._transcribe_batched = lambda wavs: seen.append([len(w) for w in wavs]) or decode(wavs)
    texts = asr.transcribe([np.zeros(31 * 16000, dtype=np.float32), np.zeros(16000, dtype=np.float32)])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert len(seen) == 1 and len(seen[0]) == 3 and max(seen[0]) <= 30 * 16000 and sum(seen[0]) == 32 * 16000


def test_ctc_backend_batches_like_single_items(ctc_dir) -> None:
    asr = build_asr("ctc", str(ctc_dir), batch_size=3)
    assert isinstance(asr, CTCASR)
    wavs = _noise([12000, 16000, 5000], seed=1)
    batched = asr.transcribe(wavs)
    assert batched == [asr.transcribe([w])[0] for w in wavs]
    # greedy CTC output is made of the tokenizer's letters (and its <unk> token), blanks removed
    assert all(set(t.replace("<unk>", "")) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ") for t in batched)


@pytest.mark.parametrize("backend, hub_id", [("whisper", "openai/whisper-large-v3"), ("ctc", "facebook/hubert-large-ls960-ft")])
def test_hub_id_offline_is_a_clear_error(backend, hub_id, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="could not be fetched from the Hugging Face hub"):
        build_asr(backend, hub_id)


def test_missing_local_dir_content_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match=str(tmp_path)):
        build_asr("ctc", str(tmp_path))


def test_unreachable_hub_is_detected_quickly(monkeypatch) -> None:
    from huggingface_hub import constants

    from evaluation.hf_loading import hub_reachable

    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")  # .invalid never resolves (RFC 2606)
    assert hub_reachable(timeout=2.0) is False
