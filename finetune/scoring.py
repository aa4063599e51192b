"""Scores of a voice on held-out sentences: Whisper WER, speaker similarity, DNSMOS and speaking rate.

:class:`VoiceScorer` holds the models (Whisper, the speaker encoder, DNSMOS), the reader's reference embedding
and the held-out sentences, loaded once; :meth:`VoiceScorer.score_voice` then scores any text-to-speech
callable, and :meth:`VoiceScorer.score_recordings` the reader's own recordings (the ceiling row).

Definitions (issue 46):

* **SIM**: resemblyzer's cosine between each utterance's embedding and the mean embedding of the reader's
  recordings, averaged over utterances (same-reader recordings score 0.91-0.96 on it);
* **WER**: corpus-level word error rate of Whisper (``base`` by default) on the English-normalised texts;
* **DNSMOS OVRL**: mean P.835 overall score;
* **rate**: phonemes (espeak-ng IPA segments of the text) per second of speech, the leading and trailing
  silence trimmed; voices and recordings are measured the same way;
* **buzz**: how far the decoder's frame rate and its harmonics stand out of the spectrum, in dB
  (:func:`evaluation.spectral.frame_rate_lines_db`; recordings 1-4, a voice with an audible buzz 6-14), when the
  frame rate is given; the recordings are measured at the voice's frame rate for the ceiling row;
* **F0**: the median F0 of the voiced frames (:func:`evaluation.pitch.median_f0_hz`, WORLD harvest), when
  asked: where the base voice and the reader speak (a fine-tuned voice's buzz can lock an F0 tracker onto the
  frame rate, so a fine-tuned voice's F0 is not measured).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from evaluation.asr import ASR_SAMPLE_RATE, FasterWhisperASR
from evaluation.base import at_rate
from evaluation.dnsmos import DNSMOS
from evaluation.intelligibility import corpus_error_rates, empty_hypothesis_counts, error_counts
from evaluation.pitch import median_f0_hz
from evaluation.speaker import SPEAKER_SAMPLE_RATE, build_embedder
from evaluation.spectral import frame_rate_lines_db
from evaluation.text_normalizer import normalize_english

log = logging.getLogger(__name__)

#: level below the peak under which leading / trailing audio counts as silence for the speaking rate
TRIM_DB = 35.0
_NOT_SEGMENTS = set(" ˈˌː.,;:!?-'\"()")

Speak = Callable[[Sequence[str]], List[Tuple[np.ndarray, int]]]


@dataclass
class VoiceScores:
    """One row of a results table: means over the held-out sentences, and the per-utterance rows."""

    wer: float
    sim: float
    dnsmos: float
    rate: float  # phonemes per second of speech
    utterances: List[Dict[str, object]] = field(default_factory=list)
    buzz_db: Optional[float] = None  # frame-rate lines over their surroundings; None: not measured
    f0_hz: Optional[float] = None  # median F0 of the voiced frames; None: not measured

    def summary(self) -> Dict[str, float]:
        out = {"wer": round(self.wer, 4), "sim": round(self.sim, 4), "dnsmos": round(self.dnsmos, 3),
               "rate": round(self.rate, 2)}
        if self.buzz_db is not None:
            out["buzz_db"] = round(self.buzz_db, 2)
        if self.f0_hz is not None:
            out["f0_hz"] = round(self.f0_hz, 1)
        return out


def phoneme_count(text: str) -> int:
    """espeak-ng IPA segments of an English text (stress, length and punctuation marks not counted)."""
    from processors.text.g2p import english_to_ipa

    ipa = english_to_ipa(text)
    return sum(1 for ch in ipa if ch not in _NOT_SEGMENTS and not unicodedata.combining(ch))


def speech_seconds(wav: np.ndarray, sample_rate: int) -> float:
    """Seconds between the first and last sound above ``-TRIM_DB`` dB of the peak (0 for silence)."""
    import librosa

    if wav.size == 0 or float(np.max(np.abs(wav))) <= 0.0:
        return 0.0
    trimmed, _ = librosa.effects.trim(np.asarray(wav, dtype=np.float32), top_db=TRIM_DB, frame_length=1024,
                                      hop_length=256)
    return trimmed.size / sample_rate


def speaking_rate(wavs: Sequence[Tuple[np.ndarray, int]], texts: Sequence[str]) -> float:
    """Phonemes per second of speech over a set of utterances (total phonemes / total speech time)."""
    seconds = sum(speech_seconds(w, sr) for w, sr in wavs)
    return sum(phoneme_count(t) for t in texts) / seconds if seconds > 0 else 0.0


class VoiceScorer:
    """Scores voices against one reader.

    Args:
        reference: the reader's recordings ``[(wav (T,), sample_rate)]`` (their mean embedding is the SIM target).
        sentences: held-out texts every voice speaks.
        asr_model: faster-whisper model (``base``, ``tiny.en``, a CTranslate2 directory).
        threads: CPU threads of Whisper.
    """

    def __init__(self, reference: Sequence[Tuple[np.ndarray, int]], sentences: Sequence[str],
                 asr_model: str = "base", threads: int = 0) -> None:
        if not reference:
            raise ValueError("VoiceScorer needs at least one recording of the reader")
        if not sentences:
            raise ValueError("VoiceScorer needs at least one held-out sentence")
        self.sentences = list(sentences)
        self.asr = FasterWhisperASR(model=asr_model, cpu_threads=threads)
        self.embedder = build_embedder("resemblyzer")
        self.dnsmos = DNSMOS()
        embeddings = self.embed(reference)
        centre = embeddings.mean(axis=0)
        self.centre = centre / np.linalg.norm(centre)

    def embed(self, wavs: Sequence[Tuple[np.ndarray, int]]) -> np.ndarray:
        return self.embedder.embed([at_rate(w, sr, SPEAKER_SAMPLE_RATE) for w, sr in wavs])

    def transcribe(self, wavs: Sequence[Tuple[np.ndarray, int]]) -> List[str]:
        return self.asr.transcribe([at_rate(w, sr, ASR_SAMPLE_RATE) for w, sr in wavs])

    def score(self, wavs: Sequence[Tuple[np.ndarray, int]], texts: Sequence[str],
              ids: Optional[Sequence[str]] = None, frame_rate_hz: Optional[float] = None,
              pitch: bool = False) -> VoiceScores:
        """Scores of utterances ``wavs`` whose words are ``texts`` (the buzz at ``frame_rate_hz`` when given, the
        median F0 with ``pitch``)."""
        hyps = self.transcribe(wavs)
        sims = self.embed(wavs) @ self.centre
        rows, counts = [], []
        for index, ((wav, sr), text, hyp, sim) in enumerate(zip(wavs, texts, hyps, sims)):
            ref, hyp_n = normalize_english(text), normalize_english(hyp)
            count = error_counts(ref, hyp_n) if hyp_n.strip() else empty_hypothesis_counts(ref)
            counts.append(count)
            mos = self.dnsmos.score_wave(wav, sr)["dnsmos_ovrl"]
            rows.append({"id": ids[index] if ids else f"{index:03d}", "text": text, "asr": hyp,
                         "wer": round(count["wer"], 4), "sim": round(float(sim), 4), "dnsmos": round(mos, 3),
                         "seconds": round(wav.size / sr, 2)})
            if frame_rate_hz:
                rows[-1]["buzz_db"] = round(frame_rate_lines_db(wav, sr, hop=sr / frame_rate_hz), 2)
        return VoiceScores(wer=corpus_error_rates(counts)["wer_corpus"], sim=float(np.mean(sims)),
                           dnsmos=float(np.mean([r["dnsmos"] for r in rows])), rate=speaking_rate(wavs, texts),
                           utterances=rows,
                           buzz_db=float(np.mean([r["buzz_db"] for r in rows])) if frame_rate_hz else None,
                           f0_hz=median_f0_hz(wavs) if pitch else None)

    def score_voice(self, speak: Speak, frame_rate_hz: Optional[float] = None, pitch: bool = False) -> VoiceScores:
        """Scores of a voice: ``speak(texts) -> [(wav, sample_rate)]`` on the held-out sentences."""
        return self.speak_and_score(speak, frame_rate_hz, pitch)[1]

    def speak_and_score(self, speak: Speak, frame_rate_hz: Optional[float] = None,
                        pitch: bool = False) -> Tuple[List[Tuple[np.ndarray, int]], VoiceScores]:
        """What a voice said on the held-out sentences, and its scores."""
        wavs = speak(self.sentences)
        return wavs, self.score(wavs, self.sentences, frame_rate_hz=frame_rate_hz, pitch=pitch)

    def score_recordings(self, wavs: Sequence[Tuple[np.ndarray, int]], texts: Sequence[str],
                         frame_rate_hz: Optional[float] = None, pitch: bool = False) -> VoiceScores:
        """The reader's own recordings scored like a voice (the ceiling row)."""
        return self.score(wavs, texts, frame_rate_hz=frame_rate_hz, pitch=pitch)
