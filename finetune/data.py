"""The reader's recordings -> a training manifest: decoded, checked, split, normalised and transcribed.

:func:`prepare_reader_data` runs :func:`processors.data.recordings.prepare_recordings` with Whisper (the
installed ``base`` model) as the recogniser, asks the voice's front end whether it can read each transcript,
writes the usable utterances to ``<data_dir>/wavs/<id>.wav`` (PCM 16 at the voice's rate) with
``<data_dir>/train.jsonl`` and lists what it left out in ``<data_dir>/skipped.tsv``. A finished preparation
(``<data_dir>/prepared.json``) is reused by ``--resume``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from evaluation.asr import ASR_SAMPLE_RATE, FasterWhisperASR
from evaluation.base import at_rate
from evaluation.intelligibility import error_counts
from evaluation.text_normalizer import normalize_english
from processors.audio import save_audio
from processors.data.manifest import ManifestEntry, atomic_write_text, write_manifest
from processors.data.recordings import (PreparedRecordings, RecordingSettings, Skipped, Transcription,
                                        prepare_recordings)

log = logging.getLogger(__name__)

#: below this much usable speech a voice cannot be fine-tuned (a one-line error)
MIN_SPEECH_SECONDS = 20.0


class WhisperTranscriber:
    """``(audio, rate) -> Transcription`` with faster-whisper: greedy, English, no timestamps; the confidence
    is the mean token log-probability over the segments."""

    def __init__(self, model: str = "base", threads: int = 0) -> None:
        self.asr = FasterWhisperASR(model=model, cpu_threads=threads)

    def __call__(self, wav: np.ndarray, sample_rate: int) -> Transcription:
        audio = np.clip(at_rate(wav, sample_rate, ASR_SAMPLE_RATE), -1.0, 1.0)
        segments, _ = self.asr.model.transcribe(audio, language="en", beam_size=1, best_of=1, temperature=0.0,
                                                without_timestamps=True, condition_on_previous_text=False,
                                                vad_filter=False)
        segments = list(segments)
        if not segments:
            return Transcription("", float("-inf"), 1.0)
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcription(text, float(np.mean([s.avg_logprob for s in segments])),
                             float(np.mean([s.no_speech_prob for s in segments])))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER between two raw English texts after the project's normaliser (1.0 when nothing was heard)."""
    ref, hyp = normalize_english(reference), normalize_english(hypothesis)
    if not ref.strip():
        return 0.0 if not hyp.strip() else 1.0
    if not hyp.strip():
        return 1.0
    return error_counts(ref, hyp)["wer"]


def prepare_reader_data(audio_dir: Path, data_dir: Path, sample_rate: int, check_text: Callable[[str], Optional[str]],
                        asr_model: str = "base", threads: int = 0, resume: bool = False,
                        settings: Optional[RecordingSettings] = None,
                        on_file: Optional[Callable[[int, int, str], None]] = None) -> Dict[str, object]:
    """Prepare (or, with ``resume``, reuse) the reader's utterances; returns the summary that is also written to
    ``prepared.json``: ``manifest``, ``utterances``, ``seconds``, ``transcripts`` ({given, asr}), ``skipped``."""
    data_dir = Path(data_dir)
    done = data_dir / "prepared.json"
    if resume and done.is_file():
        summary = json.loads(done.read_text(encoding="utf-8"))
        log.info("reusing the prepared recordings in %s (%d utterances)", data_dir, summary["utterances"])
        return summary
    prepared = prepare_recordings(audio_dir, sample_rate, WhisperTranscriber(asr_model, threads), word_error_rate,
                                  settings, on_file)
    kept = []
    for utt in prepared.utterances:
        why = check_text(utt.text)
        if why:
            prepared.skipped.append(Skipped(utt.source, f"the voice cannot read its transcript: {why}", utt.start))
        else:
            kept.append(utt)
    prepared.utterances = kept
    summary = write_prepared(prepared, data_dir, settings or RecordingSettings())
    atomic_write_text(done, json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


def write_prepared(prepared: PreparedRecordings, data_dir: Path, settings: RecordingSettings) -> Dict[str, object]:
    """Wavs, ``train.jsonl`` and ``skipped.tsv`` of a preparation; returns its summary."""
    wav_dir = data_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    entries: List[ManifestEntry] = []
    for utt in prepared.utterances:
        path = save_audio(wav_dir / f"{utt.id}.wav", utt.audio, prepared.sample_rate)
        entries.append(ManifestEntry(utt.id, str(path.resolve()), "reader", utt.text,
                                     round(utt.audio.size / prepared.sample_rate, 4), prepared.sample_rate,
                                     {"source": utt.source, "start": round(utt.start, 2),
                                      "transcript": utt.transcript}))
    skipped_rows = [f"{s.label()}\t{s.reason}\n" for s in prepared.skipped]
    atomic_write_text(data_dir / "skipped.tsv", "".join(skipped_rows))
    manifest = write_manifest(entries, data_dir / "train.jsonl") if entries else data_dir / "train.jsonl"
    origins = [u.transcript for u in prepared.utterances]
    return {"manifest": str(manifest), "utterances": len(entries), "seconds": round(prepared.seconds(), 2),
            "transcripts": {"given": origins.count("given"), "asr": origins.count("asr")},
            "skipped": [{"item": s.label(), "reason": s.reason} for s in prepared.skipped],
            "settings": asdict(settings)}
