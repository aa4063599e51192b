"""WaveGrad 2 training data: (phoneme ids, waveform cropped to whole frames, durations?, speaker id) per row.

Durations come from one of two places (``data.durations``):

* ``"manifest"`` — frames per phoneme in the row's ``extra["durations"]`` (a forced aligner's output or a
  synthetic corpus; the manifest's free-form ``extra`` field), at the model's hop unless the row's
  ``extra["frame_seconds"]`` gives another frame length (then they are converted on cumulative boundaries, so
  rounding never drifts). Durations over another phoneme sequence (a synthetic corpus's voice with blanks or
  Piper's framing, named by ``extra["phonemes"]``) are moved onto this model's phonemes
  (:mod:`processors.data.durations`). They must sum to the clip's frame count (``len(wav) // hop``, a
  difference of up to 2 frames is absorbed by the last phoneme), else the row is skipped and listed.
* ``"aligner"`` — none here: the model's internal aligner (MAS on log-mel frames) finds them while training.

Rows whose text does not phonemise, that are longer than ``max_seconds``, or that have fewer frames than
phonemes (no monotonic alignment exists) are skipped and listed in ``self.skipped`` (id, reason).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import Dataset

from models.tts.wavegrad2.config import WaveGrad2DataConfig
from processors.data.durations import fit_durations, manifest_durations
from processors.audio import AudioError, load_audio
from processors.data.manifest import ManifestEntry, check_usable, read_manifest, speaker_index
from processors.text.frontend import TextError, TextFrontend


class WaveGrad2Dataset(Dataset):
    """Items ``{"id", "text" (N,) long, "wav" (T*hop,), "durations" (N,) float or None, "sid" int}``."""

    def __init__(self, entries: Sequence[ManifestEntry], data: WaveGrad2DataConfig, sample_rate: int,
                 hop_length: int, n_speakers: int, source: str = "manifest"):
        self.data, self.sample_rate, self.hop = data, sample_rate, hop_length
        frontend = TextFrontend(add_blank=data.add_blank)
        self.items: List[Tuple[str, str, List[int], Optional[List[float]], int, float]] = []
        self.skipped: List[Tuple[str, str]] = []
        for entry in entries:
            try:
                self.items.append(self._item(entry, frontend, n_speakers))
            except (TextError, ValueError) as err:
                self.skipped.append((entry.id, str(err)))
        check_usable(source, len(self.items), self.skipped)

    def _item(self, entry: ManifestEntry, frontend: TextFrontend, n_speakers: int):
        symbols = frontend(entry.text)
        ids = list(symbols["ids_blank"])
        if entry.duration and entry.duration > self.data.max_seconds:
            raise ValueError(f"{entry.duration:.1f} s is longer than data.max_seconds={self.data.max_seconds}")
        frames = int(entry.duration * self.sample_rate) // self.hop if entry.duration else None
        if frames is not None and frames < len(ids):
            raise ValueError(f"{frames} frames for {len(ids)} phonemes: too short to align")
        durations = None
        if self.data.durations == "manifest":
            phonemes = symbols["cleaned"] if len(symbols["cleaned"]) == len(ids) else None  # one id per character
            durations = manifest_durations(entry, self.hop / self.sample_rate, phonemes, len(ids))
            if durations is None:
                raise ValueError("no extra['durations'] in the manifest row (data.durations = 'manifest')")
        sid = speaker_index(entry.speaker, self.data.speakers, n_speakers)
        return entry.id, entry.path, ids, durations, sid, entry.duration

    def __len__(self) -> int:
        return len(self.items)

    def durations(self) -> List[float]:
        """Seconds per item from the manifest (for ``train.batching`` by duration; not phoneme durations)."""
        return [seconds for *_, seconds in self.items]

    def lengths(self) -> List[int]:
        """Frames per item (for length-bucketed batches)."""
        return [int(seconds * self.sample_rate) // self.hop for *_, seconds in self.items]

    def __getitem__(self, index: int) -> Dict[str, object]:
        item_id, path, ids, durations, sid, _ = self.items[index]
        try:
            wav = load_audio(path, self.sample_rate)
        except AudioError as err:
            raise AudioError(f"{item_id}: {err}") from err
        frames = len(wav) // self.hop
        if frames < len(ids):
            raise ValueError(f"{item_id}: {frames} frames for {len(ids)} phonemes")
        wav = torch.from_numpy(wav[: frames * self.hop].copy()).float()
        if durations is not None:
            durations = torch.tensor(fit_durations(durations, frames))
        return {"id": item_id, "text": torch.tensor(ids, dtype=torch.long), "wav": wav, "durations": durations,
                "sid": sid}


def collate_wavegrad2(items: List[Dict[str, object]]) -> Dict[str, object]:
    """Zero-pad into ``text (B, N)``, ``text_lengths``, ``wav (B, L)``, ``wav_lengths``, ``durations (B, N)``
    (or None when the items carry none), ``sid (B,)``, ``ids``."""
    batch = len(items)
    text_len = torch.tensor([len(it["text"]) for it in items], dtype=torch.long)
    wav_len = torch.tensor([it["wav"].numel() for it in items], dtype=torch.long)
    text = torch.zeros(batch, int(text_len.max()), dtype=torch.long)
    wav = torch.zeros(batch, int(wav_len.max()))
    has_durations = all(it["durations"] is not None for it in items)
    durations = torch.zeros(batch, text.size(1)) if has_durations else None
    for b, it in enumerate(items):
        text[b, : text_len[b]] = it["text"]
        wav[b, : wav_len[b]] = it["wav"]
        if durations is not None:
            durations[b, : text_len[b]] = it["durations"]
    return {"text": text, "text_lengths": text_len, "wav": wav, "wav_lengths": wav_len, "durations": durations,
            "sid": torch.tensor([int(it["sid"]) for it in items], dtype=torch.long), "ids": [it["id"] for it in items]}


def load_datasets(data: WaveGrad2DataConfig, sample_rate: int, hop_length: int, n_speakers: int):
    train = WaveGrad2Dataset(read_manifest(data.train_manifest), data, sample_rate, hop_length, n_speakers,
                             data.train_manifest)
    valid = None
    if data.valid_manifest:
        valid = WaveGrad2Dataset(read_manifest(data.valid_manifest), data, sample_rate, hop_length, n_speakers,
                                 data.valid_manifest)
    return train, valid
