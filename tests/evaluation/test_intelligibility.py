"""WER/CER with the embedded pocketsphinx recogniser on real LJSpeech speech, and the edge cases."""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np
import pytest

from evaluation.asr import ASRBackend, build_asr
from evaluation.base import EvalItem, at_rate, read_audio
from evaluation.intelligibility import WordErrorRate
from tests.helpers import MINI_CORPUS

LJ_IDS = ("LJ001-0002", "LJ001-0004", "LJ001-0006")  # ~13 s of audio in all: pocketsphinx is ~0.2x real time


class RecordingASR(ASRBackend):
    """Returns a fixed transcript and remembers how many waveforms it was asked to decode."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: List[int] = []

    def transcribe(self, wavs: Sequence[np.ndarray]) -> List[str]:
        self.calls.append(len(wavs))
        return [self.text] * len(wavs)


@pytest.fixture(scope="module")
def pocketsphinx_wer() -> WordErrorRate:
    return WordErrorRate(asr="pocketsphinx")


def test_pocketsphinx_wer_on_ljspeech_below_40_percent(pocketsphinx_wer: WordErrorRate, ljspeech_rows) -> None:
    rows = {r["path"].split("/")[-1][:-4]: r for r in ljspeech_rows}
    items = []
    for utt_id in LJ_IDS:
        wav, sr = read_audio(MINI_CORPUS / rows[utt_id]["path"])
        items.append(EvalItem(utt_id, wav, sr, text=rows[utt_id]["transcript"]))
    scored = pocketsphinx_wer.score(items)
    corpus = pocketsphinx_wer.corpus(scored)
    print({i.utt_id: (round(r["wer"], 3), r["hypothesis"]) for i, r in zip(items, scored)}, corpus)
    assert corpus["wer_corpus"] < 0.40
    assert all(r["hypothesis"] for r in scored)  # real speech is decoded into words
    # pooled WER = total edits / total reference words
    assert corpus["wer_corpus"] == pytest.approx(sum(r["wer_errors"] for r in scored) / sum(r["wer_words"] for r in scored))


def test_silent_and_empty_outputs_score_100_percent_wer() -> None:
    asr = RecordingASR("printing in the only sense")
    metric = WordErrorRate(backend=asr)
    text = "Printing, in the only sense."
    items = [
        EvalItem("silent", np.zeros(16000, dtype=np.float32), 16000, text=text),
        EvalItem("empty", np.zeros(0, dtype=np.float32), 16000, text=text),
        EvalItem("speech", (0.1 * np.sin(np.arange(16000) / 5.0)).astype(np.float32), 16000, text=text),
        EvalItem("no_text", (0.1 * np.sin(np.arange(16000) / 5.0)).astype(np.float32), 16000, text=None),
    ]
    rows = metric.score(items)
    assert rows[0]["wer"] == 1.0 and rows[0]["cer"] == 1.0 and rows[0]["hypothesis"] == ""
    assert rows[1]["wer"] == 1.0
    assert rows[2]["wer"] == 0.0  # the fake transcript matches after normalisation
    assert math.isnan(rows[3]["wer"])  # no transcript: skipped, not scored as perfect
    assert asr.calls == [1]  # silent, empty and text-less items are never sent to the recogniser


def test_pocketsphinx_silence_gives_no_words(pocketsphinx_wer: WordErrorRate) -> None:
    # straight through the backend (the metric would not even decode it): silence is not turned into text
    text = pocketsphinx_wer.backend.transcribe([np.zeros(8000, dtype=np.float32)])[0]
    assert text.strip() == ""


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown ASR backend 'kaldi'"):
        build_asr("kaldi")
    with pytest.raises(ValueError, match="embedded model"):
        build_asr("pocketsphinx", model="some/model")


def test_pocketsphinx_result_does_not_depend_on_decoding_order() -> None:
    from evaluation.asr import PocketSphinxASR

    wavs = []
    for utt_id in ("LJ001-0001", "LJ001-0002"):
        wav, sr = read_audio(MINI_CORPUS / "ljspeech" / f"{utt_id}.wav")
        wavs.append(at_rate(wav, sr, 16000))
    asr = PocketSphinxASR()
    first = asr.transcribe(wavs[1:])[0]  # a fresh decoder
    after_another = asr.transcribe(wavs)[1]  # the same clip after a 9.7 s utterance
    assert after_another == first
