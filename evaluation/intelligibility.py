"""WER and CER: ASR of the *generated* audio against the manifest transcript, both normalised.

* Reference = the manifest's ``text`` (never a transcript of the generated audio itself; never of the
  reference audio unless the manifest says so).  Hypothesis = ASR of the generated audio.
* Both go through :func:`evaluation.text_normalizer.normalize_english` (case, punctuation, numbers,
  contractions, spellings); words are split on whitespace (spaces are *kept*), CER is over the characters of
  the normalised strings, spaces included (jiwer's convention).
* Per utterance: ``wer = (S + D + I) / N`` with N the reference word count (so it can exceed 1).  Corpus
  level (the number papers report): ``sum(S + D + I) / sum(N)`` over all utterances, from the per-utterance
  counts kept in the CSV (``wer_errors``/``wer_words``, ``cer_errors``/``cer_chars``).
* A silent output is not decoded: its hypothesis is empty, so WER = CER = 1 (all deletions).
* An utterance without a transcript is skipped (NaN, logged).
"""

from __future__ import annotations

import logging
import math
from typing import Dict, List, Mapping, Optional, Sequence

import jiwer

from evaluation.asr import DEFAULT_ASR, ASRBackend, build_asr
from evaluation.base import EvalItem, Metric, Row, at_rate, nan_row
from evaluation.text_normalizer import normalize_english
from utils.registry import register

logger = logging.getLogger(__name__)


def error_counts(reference: str, hypothesis: str) -> Dict[str, float]:
    """Word and character edit counts between two *normalised* strings (reference must be non-empty)."""
    if not reference.strip():
        raise ValueError("WER needs a non-empty reference after normalisation")
    words = jiwer.process_words(reference, hypothesis)
    word_errors = words.substitutions + words.deletions + words.insertions
    n_words = words.substitutions + words.deletions + words.hits
    chars = jiwer.process_characters(reference, hypothesis)
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    n_chars = chars.substitutions + chars.deletions + chars.hits
    return {
        "wer": word_errors / n_words,
        "cer": char_errors / n_chars,
        "wer_errors": float(word_errors),
        "wer_words": float(n_words),
        "cer_errors": float(char_errors),
        "cer_chars": float(n_chars),
    }


def empty_hypothesis_counts(reference: str) -> Dict[str, float]:
    """Counts for an empty hypothesis: every reference word and character deleted."""
    n_words, n_chars = len(reference.split()), len(reference)
    return {"wer": 1.0, "cer": 1.0, "wer_errors": float(n_words), "wer_words": float(n_words),
            "cer_errors": float(n_chars), "cer_chars": float(n_chars)}


@register("metric", "wer")
class WordErrorRate(Metric):
    """WER/CER with a pluggable ASR backend (``faster-whisper`` default, ``pocketsphinx``, ``whisper``, ``ctc``)."""

    name = "wer"
    columns = {"wer": False, "cer": False}
    needs = ("text",)
    count_columns = ("wer_errors", "wer_words", "cer_errors", "cer_chars")

    def __init__(
        self,
        asr: str = DEFAULT_ASR,
        asr_model: Optional[str] = None,
        batch_size: int = 8,
        device: str = "cpu",
        backend: Optional[ASRBackend] = None,
    ) -> None:
        self.backend = backend if backend is not None else build_asr(asr, asr_model, batch_size, device)

    def score(self, items: Sequence[EvalItem]) -> List[Row]:
        rows: List[Row] = [nan_row(list(self.columns) + list(self.count_columns)) for _ in items]
        references: Dict[int, str] = {}
        for index, item in enumerate(items):
            reason = self.usable(item)
            if reason is not None:
                logger.warning("WER skipped for %s: %s", item.utt_id, reason)
                continue
            reference = normalize_english(item.text or "")
            if not reference:
                logger.warning("WER skipped for %s: transcript is empty after normalisation", item.utt_id)
                continue
            references[index] = reference
        to_decode = [i for i in references if not items[i].generated_is_silent]
        rate = self.backend.sample_rate
        hypotheses = self.backend.transcribe(
            [at_rate(items[i].generated, items[i].generated_sr, rate) for i in to_decode]
        )
        decoded = dict(zip(to_decode, hypotheses))
        for index, reference in references.items():
            hypothesis = normalize_english(decoded.get(index, ""))
            counts = error_counts(reference, hypothesis) if hypothesis else empty_hypothesis_counts(reference)
            rows[index] = {**counts, "hypothesis": hypothesis, "reference_text": reference}  # type: ignore[dict-item]
        return rows

    def corpus(self, rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
        return corpus_error_rates(rows)

    def corpus_columns(self) -> Dict[str, bool]:
        return {"wer_corpus": False, "cer_corpus": False}


def corpus_error_rates(rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """Pooled WER/CER: total edits over total reference words/characters (NaN rows ignored)."""
    totals = {key: 0.0 for key in ("wer_errors", "wer_words", "cer_errors", "cer_chars")}
    for row in rows:
        values = [row.get(key, math.nan) for key in totals]
        if any(not isinstance(v, (int, float)) or math.isnan(v) for v in values):
            continue
        for key, value in zip(totals, values):
            totals[key] += value
    return {
        "wer_corpus": totals["wer_errors"] / totals["wer_words"] if totals["wer_words"] else math.nan,
        "cer_corpus": totals["cer_errors"] / totals["cer_chars"] if totals["cer_chars"] else math.nan,
    }
