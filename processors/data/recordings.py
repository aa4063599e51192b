"""A folder of someone's recordings -> clean, transcribed utterances for fine-tuning a voice.

``--audio_dir`` holds recordings as people have them: any mix of wav / flac / mp3 / ogg (whatever libsndfile
decodes), any rate or channel count, short clips or long takes, with or without transcripts. This module

1. finds the audio files and the transcripts given with them (:func:`read_transcripts`: an LJSpeech
   ``metadata.csv``, ``id|text`` or ``id|raw|normalised``; or a ``.txt`` / ``.lab`` beside each file);
2. decodes each file to mono at the model's rate; a file that does not decode is skipped as "not audio";
3. checks it (:func:`check_take`): silent, clipped, or mostly not speech (music, noise) are skipped;
4. cuts long takes into utterances at their pauses (:func:`split_on_pauses`), trims the silence around each
   utterance and normalises its loudness (:func:`normalise_loudness`);
5. transcribes what has no transcript with the ``transcribe`` callable it is given (the fine-tuning
   front end passes Whisper), and skips utterances whose transcript is unreliable: a given transcript that the
   recogniser disagrees with, or a recogniser result with low confidence.

Every skipped file or piece is listed with its reason (:class:`Skipped`); nothing raises for bad input except
an ``--audio_dir`` that is missing. The recogniser is passed in rather than imported: ``processors`` sits
below ``evaluation``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from processors.audio import AudioError, load_audio

log = logging.getLogger(__name__)

TRANSCRIPT_SUFFIXES = (".txt", ".lab")
METADATA_NAMES = ("metadata.csv",)
#: files never treated as recordings (notes, licences, images beside the audio)
NOT_AUDIO_SUFFIXES = TRANSCRIPT_SUFFIXES + (".csv", ".md", ".json", ".jsonl", ".pdf", ".png", ".jpg", ".jpeg")


@dataclass
class RecordingSettings:
    """Thresholds of the checks (defaults suit read speech recorded at home)."""

    min_utterance_seconds: float = 1.0  # shorter pieces are too short to train on
    max_utterance_seconds: float = 12.0  # longer ones are cut at pauses
    max_file_minutes: float = 60.0  # a longer file is refused (memory) rather than decoded
    silence_peak_dbfs: float = -45.0  # a file whose peak stays below this is silent
    clip_level: float = 0.995  # |sample| at or above this counts as clipped
    max_clipped_fraction: float = 0.002  # ... more clipped samples than this fraction: clipped
    min_speech_fraction: float = 0.3  # voice activity below this fraction: not speech (music, noise)
    min_loudness_spread_db: float = 12.0  # loudness varying less than this: steady noise, not speech
    max_no_speech: float = 0.6  # the recogniser's probability that a piece holds no speech
    pause_db: float = 40.0  # below the peak by this much counts as a pause
    trim_db: float = 35.0  # silence trimmed around each utterance
    edge_seconds: float = 0.1  # silence kept at each end of an utterance
    target_dbfs: float = -20.0  # RMS loudness of the speech after normalisation
    max_transcript_disagreement: float = 0.35  # WER between a given transcript and the recogniser's
    min_asr_logprob: float = -1.0  # recogniser's mean token log-probability below this: unreliable


@dataclass
class Utterance:
    """One usable utterance: mono float32 ``audio (T,)`` at the preparation rate, its text and where it came
    from (``source`` file, ``start`` second in it)."""

    id: str
    audio: np.ndarray
    text: str
    source: str
    start: float
    transcript: str  # "given" or "asr"


@dataclass
class Skipped:
    """A file or piece left out, and why (the reason is shown to the user as is)."""

    source: str
    reason: str
    start: Optional[float] = None

    def label(self) -> str:
        return self.source if self.start is None else f"{self.source} @ {self.start:.1f} s"


@dataclass
class PreparedRecordings:
    """What :func:`prepare_recordings` found: the utterances, the skipped items, the rate."""

    sample_rate: int
    utterances: List[Utterance] = field(default_factory=list)
    skipped: List[Skipped] = field(default_factory=list)

    def seconds(self) -> float:
        return sum(u.audio.size for u in self.utterances) / self.sample_rate


@dataclass
class Transcription:
    """A recogniser's answer for one utterance: the text, its mean token log-probability and the recogniser's
    probability that there was no speech at all."""

    text: str
    logprob: float
    no_speech: float = 0.0


Transcribe = Callable[[np.ndarray, int], Transcription]
Disagreement = Callable[[str, str], float]


def read_transcripts(audio_dir: Path) -> Dict[str, str]:
    """File stem -> transcript, from ``metadata.csv`` (LJSpeech: ``id|raw|normalised``, the normalised text is
    used when present) and from ``.txt`` / ``.lab`` files beside the audio (these win)."""
    texts: Dict[str, str] = {}
    for name in METADATA_NAMES:
        path = audio_dir / name
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.reader(handle, delimiter="|", quoting=csv.QUOTE_NONE):
                    if len(row) >= 2 and row[0].strip():
                        text = (row[2] if len(row) >= 3 and row[2].strip() else row[1]).strip()
                        if text:
                            texts[Path(row[0].strip()).stem] = text
    for path in sorted(audio_dir.rglob("*")):
        if path.suffix.lower() in TRANSCRIPT_SUFFIXES and path.is_file():
            text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            if text:
                texts[path.stem] = text
    return texts


def audio_candidates(audio_dir: Path) -> List[Path]:
    """Every regular file under ``audio_dir`` that is not a transcript, note or picture (sorted)."""
    return [p for p in sorted(audio_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in NOT_AUDIO_SUFFIXES]


def dbfs(value: float) -> float:
    return 20.0 * float(np.log10(max(value, 1e-10)))


def speech_fraction(wav: np.ndarray, sample_rate: int) -> float:
    """Fraction of 30 ms frames webrtcvad (aggressiveness 2) calls speech, on the loud-enough part of the take
    (the frames within 50 dB of the peak): music and steady noise score low, read speech high."""
    import webrtcvad

    from processors.audio import resample

    rate = 16000
    pcm = np.clip(resample(wav, sample_rate, rate), -1.0, 1.0)
    peak = float(np.max(np.abs(pcm))) or 1.0
    pcm = (pcm / peak * 0.9 * 32767).astype(np.int16)
    vad, step = webrtcvad.Vad(2), rate * 30 // 1000
    frames = [pcm[i:i + step] for i in range(0, pcm.size - step + 1, step)]
    loud = [f for f in frames if dbfs(float(np.abs(f).max()) / 32767) > -50.0]
    if not loud:
        return 0.0
    return sum(vad.is_speech(f.tobytes(), rate) for f in loud) / len(loud)


def loudness_spread(wav: np.ndarray, sample_rate: int) -> float:
    """dB between the loud (95th percentile) and quiet (10th) 20 ms frames: speech, with its syllables and
    pauses, spans 25-50 dB; steady noise (hiss, hum, fan) a few dB. webrtcvad alone calls white noise speech."""
    step = max(1, sample_rate // 50)
    frames = wav[: wav.size // step * step].reshape(-1, step)
    if frames.shape[0] < 5:
        return 0.0
    levels = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return float(np.percentile(levels, 95) - np.percentile(levels, 10))


def check_take(wav: np.ndarray, sample_rate: int, settings: RecordingSettings) -> Optional[str]:
    """Why a decoded take cannot be used (silent, clipped, not speech), or None."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if dbfs(peak) < settings.silence_peak_dbfs:
        return f"silent (peak {dbfs(peak):.0f} dBFS)"
    clipped = float(np.mean(np.abs(wav) >= settings.clip_level))
    if clipped > settings.max_clipped_fraction:
        return f"clipped ({100 * clipped:.1f} % of samples at full scale)"
    spread = loudness_spread(wav, sample_rate)
    if spread < settings.min_loudness_spread_db:
        return f"not speech: steady noise? (its loudness varies by {spread:.0f} dB only)"
    fraction = speech_fraction(wav, sample_rate)
    if fraction < settings.min_speech_fraction:
        return f"not speech: music or noise? (voice activity in {100 * fraction:.0f} % of it)"
    return None


def split_on_pauses(wav: np.ndarray, sample_rate: int, settings: RecordingSettings) -> List[Tuple[int, int]]:
    """Sample ranges of the utterances of a take: sound between pauses, joined while they stay under
    ``max_utterance_seconds``; a single sound longer than that is cut at its quietest frame."""
    import librosa

    hop = 256
    intervals = librosa.effects.split(wav, top_db=settings.pause_db, frame_length=1024, hop_length=hop)
    limit = int(settings.max_utterance_seconds * sample_rate)
    pieces: List[Tuple[int, int]] = []
    for start, end in intervals:
        while end - start > limit:  # no pause long enough: cut at the quietest frame of the last third
            window = wav[start + limit * 2 // 3:start + limit]
            energy = np.convolve(window ** 2, np.ones(hop), mode="valid")
            cut = start + limit * 2 // 3 + int(np.argmin(energy[::hop]) * hop)
            pieces.append((start, cut))
            start = cut
        if pieces and end - pieces[-1][0] <= limit and start - pieces[-1][1] < sample_rate:
            pieces[-1] = (pieces[-1][0], end)  # a short pause inside a sentence: keep one utterance
        else:
            pieces.append((start, end))
    return [(int(s), int(e)) for s, e in pieces]


def normalise_loudness(wav: np.ndarray, target_dbfs: float, max_peak: float = 0.95) -> np.ndarray:
    """Scale so that the RMS of the speech (frames within 30 dB of the loudest) is ``target_dbfs``; the peak
    never exceeds ``max_peak``."""
    frames = wav[: wav.size // 512 * 512].reshape(-1, 512) if wav.size >= 512 else wav.reshape(1, -1)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = rms[rms > rms.max() * 10 ** (-30 / 20)] if rms.max() > 0 else rms
    level = float(np.sqrt(np.mean(loud ** 2))) if loud.size else 0.0
    if level <= 0:
        return wav
    gain = min(10 ** (target_dbfs / 20) / level, max_peak / max(float(np.max(np.abs(wav))), 1e-9))
    return (wav * gain).astype(np.float32)


def trim_edges(wav: np.ndarray, sample_rate: int, settings: RecordingSettings) -> np.ndarray:
    """The utterance without its leading / trailing silence, ``edge_seconds`` of it kept on each side."""
    import librosa

    _, (start, end) = librosa.effects.trim(wav, top_db=settings.trim_db, frame_length=1024, hop_length=256)
    keep = int(settings.edge_seconds * sample_rate)
    return wav[max(0, start - keep):min(wav.size, end + keep)]


def _decode(path: Path, sample_rate: int, settings: RecordingSettings) -> np.ndarray:
    """Mono float32 at ``sample_rate``; AudioError (the reason) when the file is not usable audio."""
    from processors.audio import audio_info

    info = audio_info(path)  # header only: refuses non-audio and over-long files before decoding
    if info.frames / max(info.samplerate, 1) > settings.max_file_minutes * 60:
        raise AudioError(f"longer than {settings.max_file_minutes:g} minutes")
    return load_audio(path, sample_rate)


def _texts_for_pieces(pieces: List[np.ndarray], given: Optional[str], sample_rate: int, transcribe: Transcribe,
                      disagreement: Disagreement, settings: RecordingSettings
                      ) -> Tuple[List[Optional[str]], List[str], str]:
    """A text (or None) and a reason per piece, and where the texts came from ("given" or "asr")."""
    if given is not None and len(pieces) == 1:
        heard = transcribe(pieces[0], sample_rate)
        if disagreement(given, heard.text) > settings.max_transcript_disagreement:
            return [None], [f"transcript disagrees with the audio (heard: {heard.text!r})"], "given"
        return [given], [""], "given"
    heard = [transcribe(p, sample_rate) for p in pieces]
    if given is not None:  # a long take with one transcript: keep the recogniser's per-piece texts if they agree
        if disagreement(given, " ".join(h.text for h in heard)) > settings.max_transcript_disagreement:
            return [None] * len(pieces), ["transcript disagrees with the audio"] * len(pieces), "given"
    texts, reasons = [], []
    for h in heard:
        if not h.text.strip() or h.no_speech > settings.max_no_speech:
            texts.append(None), reasons.append("no words recognised: music or noise?")
        elif h.logprob < settings.min_asr_logprob:
            texts.append(None), reasons.append(f"unreliable transcription (log-probability {h.logprob:.2f})")
        else:
            texts.append(h.text.strip()), reasons.append("")
    return texts, reasons, "asr"


def prepare_take(path: Path, wav: np.ndarray, given: Optional[str], sample_rate: int, transcribe: Transcribe,
                 disagreement: Disagreement, settings: RecordingSettings) -> Tuple[List[Utterance], List[Skipped]]:
    """The utterances of one decoded take and the pieces of it left out."""
    reason = check_take(wav, sample_rate, settings)
    if reason:
        return [], [Skipped(str(path), reason)]
    ranges = split_on_pauses(wav, sample_rate, settings)
    pieces, starts, skipped = [], [], []
    for start, end in ranges:
        piece = trim_edges(wav[start:end], sample_rate, settings)
        if piece.size < settings.min_utterance_seconds * sample_rate:
            if len(ranges) == 1:
                skipped.append(Skipped(str(path), f"too short ({piece.size / sample_rate:.1f} s of speech)"))
            continue  # a cough or click between sentences of a long take: not worth listing
        pieces.append(normalise_loudness(piece, settings.target_dbfs))
        starts.append(start / sample_rate)
    if not pieces:
        return [], skipped or [Skipped(str(path), "no utterance long enough")]
    texts, reasons, origin = _texts_for_pieces(pieces, given, sample_rate, transcribe, disagreement, settings)
    utterances = []
    for index, (piece, start, text, why) in enumerate(zip(pieces, starts, texts, reasons)):
        if text is None:
            skipped.append(Skipped(str(path), why, start if len(pieces) > 1 else None))
            continue
        suffix = f"_{index:03d}" if len(pieces) > 1 else ""
        utterances.append(Utterance(f"{path.stem}{suffix}", piece, text, str(path), start, origin))
    return utterances, skipped


def prepare_recordings(audio_dir: Path | str, sample_rate: int, transcribe: Transcribe, disagreement: Disagreement,
                       settings: Optional[RecordingSettings] = None,
                       on_file: Optional[Callable[[int, int, str], None]] = None) -> PreparedRecordings:
    """Every usable utterance under ``audio_dir`` and every file or piece left out, with its reason.

    Args:
        audio_dir: the folder of recordings (searched recursively).
        sample_rate: the rate utterances are returned at (the model's).
        transcribe: ``(mono audio, rate) -> Transcription``.
        disagreement: ``(reference, hypothesis) -> error rate`` between a given transcript and the recogniser's.
        on_file: progress callback ``(done, total, file name)``.
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"--audio_dir {audio_dir}: no such directory")
    settings = settings or RecordingSettings()
    transcripts = read_transcripts(audio_dir)
    files = audio_candidates(audio_dir)
    out = PreparedRecordings(sample_rate)
    ids: Dict[str, int] = {}
    for number, path in enumerate(files, start=1):
        try:
            wav = _decode(path, sample_rate, settings)
        except AudioError as err:
            out.skipped.append(Skipped(str(path), f"not audio ({str(err).replace(str(path) + ': ', '')})"))
            continue
        finally:
            if on_file is not None:
                on_file(number, len(files), path.name)
        utterances, skipped = prepare_take(path, wav, transcripts.get(path.stem), sample_rate, transcribe,
                                           disagreement, settings)
        for utt in utterances:  # the same stem in two sub-folders: keep ids unique
            ids[utt.id] = ids.get(utt.id, 0) + 1
            if ids[utt.id] > 1:
                utt.id = f"{utt.id}_{ids[utt.id]}"
        out.utterances.extend(utterances)
        out.skipped.extend(skipped)
    return out
