"""Per-phoneme durations in a manifest row (the ``extra.durations`` schema) and their conversion to a model's frames.

Schema (the optional ``extra`` object of a manifest row, :mod:`processors.data.manifest`)::

    "extra": {
      "durations": [4, 1, 2, ...],   # required: non-negative numbers, one per symbol (below), summing to the
                                     #   clip's frames (up to 2 frames of edge rounding are absorbed)
      "hop_length": 256,             # unit, preferred: frames of hop_length samples at the row's sample_rate
      "frame_seconds": 0.01161,      # unit, else: seconds per frame (rounded; hop_length wins when both are set)
      "phonemes": "ðə kˈɛɾəl ...",   # symbol set, when the durations are not one per model phoneme: the
                                     #   espeak-ng IPA string the durations frame (see below)
      "phoneme_ids": [1, 0, 41, ...] # informative: the writer's own ids (e.g. Piper's), not read here
    }

With neither ``hop_length`` nor ``frame_seconds`` the durations are in the reading model's own frames.
Symbols: when ``len(durations)`` equals the model's phoneme count they are taken one per phoneme. Otherwise
``extra.phonemes`` says which phoneme string they count, bare (one per character), blank-interspersed
(``_ p1 _ … pn _``, VITS with blanks) or Piper-framed (``^ _ p1 _ … pn _ $``); the ``piper_corpus`` preparer
(``models/tts/vits/piper_corpus.py``) writes the latter. They are then moved onto the model's own phonemes of the
row's text:

1. each framing symbol's frames go to the phoneme it follows (the leading ones to the first phoneme);
2. the row's phoneme string is aligned to the model's one character by character (``difflib``; both come from
   espeak-ng, so they differ only where the front ends read a number or an abbreviation differently): equal
   stretches keep their frames, a replaced stretch shares its frames evenly, frames of a row-only stretch go
   to the preceding model phoneme, a model-only stretch gets 0 frames;
3. the frame length is converted on cumulative boundaries (rounding never drifts).

Readers: WaveGrad 2 (``data.durations: "manifest"``) and :class:`PhonemeDurationMels` (toy_tts, and any
family trained on phoneme ids + durations + log-mels).
"""

from __future__ import annotations

import difflib
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from processors.audio import load_audio
from processors.data.manifest import ManifestEntry, check_usable, read_manifest
from processors.spectrogram import MelConfig, VitsMelSpectrogram


_DURATION_SLACK = 2  # frames a manifest's durations may differ from the audio (edge rounding of aligners)


def row_durations(entry: ManifestEntry) -> Optional[List[float]]:
    """``extra["durations"]`` as numbers (None when the row has none)."""
    durations = entry.extra.get("durations")
    if durations is None:
        return None
    if not isinstance(durations, list) or not all(isinstance(d, (int, float)) and d >= 0 for d in durations):
        raise ValueError("extra['durations'] must be a list of non-negative numbers (frames per phoneme)")
    return [float(d) for d in durations]


def row_frame_seconds(entry: ManifestEntry, default: float) -> float:
    """The length of the row's duration frames: ``extra.hop_length`` samples at the row's ``sample_rate`` (exact),
    else ``extra.frame_seconds``, else ``default`` (the model's own frame)."""
    hop = entry.extra.get("hop_length")
    if hop is not None:
        if not isinstance(hop, int) or hop <= 0 or not entry.sample_rate:
            raise ValueError(f"extra['hop_length'] must be a positive integer with the row's sample_rate, got {hop!r}")
        return hop / entry.sample_rate
    return float(entry.extra.get("frame_seconds", default))


def per_phoneme(durations: Sequence[float], phonemes: str) -> Tuple[List[float], List[str]]:
    """Frames per character of ``phonemes`` from durations over it, bare or framed (blanks, ``^``/``$``).

    Returns the frames and the characters they belong to (``phonemes`` as written, or decomposed (NFD) as
    Piper splits it, whichever the durations count).
    """
    for symbols in (list(phonemes), list(unicodedata.normalize("NFD", phonemes))):
        n = len(symbols)
        # first symbol's position and stride of each framing: bare, blank-interspersed, Piper's ^ _ … _ $
        framing = {n: (0, 1), 2 * n + 1: (1, 2), 2 * n + 3: (2, 2)}.get(len(durations)) if n else None
        if framing is None:
            continue
        first, stride = framing
        starts = [0] + [first + stride * i for i in range(1, n)] + [len(durations)]
        return [float(sum(durations[a:b])) for a, b in zip(starts, starts[1:])], symbols
    raise ValueError(f"{len(durations)} durations fit no framing of the {len(phonemes)} phonemes in extra['phonemes']")


def transfer(durations: Sequence[float], source: Sequence[str], target: Sequence[str]) -> List[float]:
    """Move frames per ``source`` symbol onto the ``target`` symbols by aligning the two sequences."""
    out = [0.0] * len(target)
    matcher = difflib.SequenceMatcher(None, list(source), list(target), autojunk=False)
    for tag, s0, s1, t0, t1 in matcher.get_opcodes():
        frames = float(sum(durations[s0:s1]))
        if tag == "equal":  # added, not set: a leading row-only stretch may have given frames already
            for offset in range(t1 - t0):
                out[t0 + offset] += float(durations[s0 + offset])
        elif tag == "replace":
            share = frames / (t1 - t0)
            for t in range(t0, t1):
                out[t] += share
        elif tag == "delete":
            out[max(t0 - 1, 0)] += frames
    return out


def to_frames(durations: Sequence[float], row_seconds: float, frame_seconds: float) -> List[float]:
    """Durations in frames of ``row_seconds`` -> frames of ``frame_seconds`` on rounded cumulative boundaries."""
    if row_seconds <= 0:
        raise ValueError(f"extra['frame_seconds'] must be positive, got {row_seconds}")
    if row_seconds == frame_seconds and all(float(d).is_integer() for d in durations):
        return [float(d) for d in durations]
    ends = torch.tensor(list(durations), dtype=torch.float64).cumsum(0) * (row_seconds / frame_seconds)
    return torch.cat([torch.zeros(1, dtype=torch.float64), torch.round(ends)]).diff().tolist()


def manifest_durations(entry: ManifestEntry, frame_seconds: float, phonemes: Optional[str] = None,
                       count: Optional[int] = None) -> Optional[List[float]]:
    """The row's durations in frames of ``frame_seconds`` over ``count`` model phonemes (None: none in the row).

    ``phonemes`` (the model front end's phoneme string, one character per id) is needed only when the row's
    durations do not already come one per model phoneme.
    """
    durations = row_durations(entry)
    if durations is None:
        return None
    if count is not None and len(durations) != count:
        row_phonemes = entry.extra.get("phonemes")
        if not isinstance(row_phonemes, str) or phonemes is None:
            raise ValueError(f"{len(durations)} durations for {count} phonemes (and no extra['phonemes'] to "
                             "move them onto this model's phonemes)")
        by_char, source = per_phoneme(durations, row_phonemes)
        durations = transfer(by_char, source, list(phonemes))
    return to_frames(durations, row_frame_seconds(entry, frame_seconds), frame_seconds)


def fit_durations(durations: Sequence[float], frames: int) -> List[float]:
    """Make ``durations`` sum to ``frames`` by adjusting the last phonemes (within the slack)."""
    fitted = [max(0.0, round(d)) for d in durations]
    diff = frames - int(sum(fitted))
    if abs(diff) > _DURATION_SLACK:
        raise ValueError(f"durations sum to {int(sum(fitted))} frames but the audio has {frames}")
    index = len(fitted) - 1
    while diff < 0 and index >= 0:  # take frames from the end, never below 0
        take = min(-diff, fitted[index])
        fitted[index] -= take
        diff += take
        index -= 1
    fitted[-1] += max(diff, 0)
    return fitted


def text_with_durations(entry: ManifestEntry, frontend, frame_seconds: float) -> Tuple[List[int], List[float]]:
    """A row's text as the front end's ids (no blanks) and its ``extra.durations`` moved onto them, in frames
    of ``frame_seconds`` (not yet fitted to the audio: see :func:`fit_durations`).

    ``frontend``: a :class:`processors.text.frontend.TextFrontend` (``add_blank=False``: one id per phoneme
    character). Raises ``ValueError`` (``TextError`` is one) naming what is wrong with the row.
    """
    # Missing durations first: on a corpus without any (the mini corpus, a folder of audio) every row is to be
    # skipped for that reason, and an untranscribed row must not report "empty text" instead.
    if row_durations(entry) is None:
        raise ValueError("no extra['durations'] in the manifest row (this model trains on given per-phoneme "
                         "durations: processors/data/durations.py)")
    symbols = frontend(entry.text)
    ids = list(symbols["ids"])
    durations = manifest_durations(entry, frame_seconds, symbols["cleaned"], len(ids))
    return ids, durations


class PhonemeDurationMels(Dataset):
    """Manifest rows -> ``(ids (N,), frames (N,) or None, log-mel (n_mels, T))``; given frames sum to ``T``.

    Ids: the English front end without blanks; frames: the row's ``extra.durations`` (:func:`text_with_durations`,
    fitted to the audio); the log-mel: :class:`processors.spectrogram.VitsMelSpectrogram` with ``mel`` (computed
    once per item and kept in memory while the cache holds less than ``cache_megabytes`` per process, every
    DataLoader worker having its own; past that computed on each read, so a large corpus cannot exhaust memory).
    With ``need_durations=False`` a row without durations gives ``None`` frames (for a model that aligns by
    itself). Rows longer than ``max_seconds``, lacking needed durations, whose text
    does not phonemise or whose durations do not fit the audio are skipped and listed in ``self.skipped``.
    """

    def __init__(self, manifest: str, mel: MelConfig, max_seconds: float, need_durations: bool = True,
                 cache_megabytes: float = 256.0):
        from processors.text.frontend import TextFrontend

        self.sample_rate, hop = mel.sample_rate, mel.hop_length
        self.mel = VitsMelSpectrogram.from_config(mel)
        self.rows: List[Tuple[str, List[int], Optional[List[float]], float]] = []
        self.skipped: List[Tuple[str, str]] = []
        self._cache: Dict[int, torch.Tensor] = {}
        self._cache_room = int(cache_megabytes * 2 ** 20)  # bytes the cache may still take
        frontend = TextFrontend(add_blank=False)
        for entry in read_manifest(manifest):
            try:
                if entry.duration > max_seconds:
                    raise ValueError(f"{entry.duration:.1f} s is longer than max_seconds={max_seconds}")
                n_frames = int(entry.duration * self.sample_rate) // hop
                if need_durations or entry.extra.get("durations") is not None:
                    ids, durations = text_with_durations(entry, frontend, hop / self.sample_rate)
                    frames: Optional[List[float]] = fit_durations(durations, n_frames)
                else:
                    ids, frames = list(frontend(entry.text)["ids"]), None
                    if n_frames < len(ids):
                        raise ValueError(f"{n_frames} frames for {len(ids)} phonemes: too short to align")
                self.rows.append((entry.path, ids, frames, entry.duration))
            except ValueError as err:
                self.skipped.append((entry.id, str(err)))
        check_usable(manifest, len(self.rows), self.skipped, "row")

    def __len__(self) -> int:
        return len(self.rows)

    def durations(self) -> List[float]:
        """Seconds per item (``train.batching`` by duration)."""
        return [row[3] for row in self.rows]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        path, ids, frames, _ = self.rows[index]
        mel = self._cache.get(index)
        if mel is None:
            with torch.no_grad():
                mel = self.mel(torch.from_numpy(load_audio(path, self.sample_rate)).unsqueeze(0))[0]
            mel = mel if frames is None else mel[:, : int(sum(frames))].clone()  # no view of the longer tensor
            if mel.nbytes <= self._cache_room:
                self._cache[index] = mel
                self._cache_room -= mel.nbytes
        return torch.tensor(ids), None if frames is None else torch.tensor(frames), mel


def collate_phoneme_durations(items) -> Dict[str, Optional[torch.Tensor]]:
    """Zero-padded ``ids (B, N)``, ``lengths (B,)``, ``frames (B, N)`` (None unless every item has them),
    ``mel (B, n_mels, T)``, ``mel_lengths (B,)``."""
    ids, frames, mels = zip(*items)
    given = all(f is not None for f in frames)
    return {"ids": pad_sequence(ids, True), "lengths": torch.tensor([len(i) for i in ids]),
            "frames": pad_sequence(frames, True) if given else None,
            "mel": pad_sequence([m.t() for m in mels], True).transpose(1, 2),
            "mel_lengths": torch.tensor([m.size(1) for m in mels])}
