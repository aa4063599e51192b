"""VITS training data: (symbol ids, linear spectrogram, waveform, speaker id) per manifest row.

Rows come from a JSONL manifest (processors/data/manifest.py).  Text is phonemised once when the dataset is
built (espeak is slow); spectrograms are computed on the fly with the shared VITS front end
(processors/spectrogram.py, pitfall 12: magnitude with +1e-6 inside the square root, reflect padding of
(n_fft - hop) / 2, uncentred STFT).  Rows whose text does not phonemise, whose symbol count lies outside
``[min_text_len, max_text_len]`` or whose audio is shorter than one training segment are skipped and listed
in ``self.skipped`` (id, reason) — the same filter as the official ``TextAudioLoader``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch.utils.data import Dataset

from models.tts.vits.config import VITSDataConfig
from models.tts.vits.text import Frontend, text_frontend
from processors.audio import load_audio
from processors.data.manifest import check_usable, read_manifest, speaker_index
from processors.spectrogram import VitsLinearSpectrogram
from processors.text.frontend import TextError


class VITSDataset(Dataset):
    """Items ``{"id", "text" (Tx,) long, "spec" (F, Ty), "wav" (T,), "sid" int}``.

    Args:
        manifest: JSONL manifest path.
        data: the experiment's data section.
        n_speakers: model.n_speakers (speaker ids are only used when > 1).
        min_samples: drop clips shorter than this (one decoder segment).
    """

    def __init__(self, manifest: Optional[str], data: VITSDataConfig, n_speakers: int, min_samples: int = 0):
        self.data = data
        self.n_speakers = n_speakers
        self.spectrogram = VitsLinearSpectrogram(data.filter_length, data.hop_length, data.win_length)
        self.frontend = text_frontend(data)
        self.min_samples = min_samples
        self.items: List[Tuple[str, str, List[int], int, float]] = []
        self.skipped: List[Tuple[str, str]] = []
        for entry in read_manifest(manifest) if manifest is not None else []:  # None: shapes streamed items only
            try:
                ids = self.checked_ids(entry.text, entry.duration)
            except ValueError as err:
                self.skipped.append((entry.id, str(err)))
                continue
            sid = speaker_index(entry.speaker, data.speakers, n_speakers)
            self.items.append((entry.id, entry.path, ids, sid, entry.duration))
        if manifest is not None:  # None: items come from shards (item_from_cut)
            check_usable(manifest, len(self.items), self.skipped)

    def checked_ids(self, text: str, duration: float) -> List[int]:
        """Symbol ids of ``text``; ValueError with the reason when the official filter drops the item."""
        data = self.data
        try:
            ids = self._text_ids(text, self.frontend)
        except TextError as err:
            raise ValueError(f"text: {err}") from None
        # ids interleave a blank (add_blank) or Piper's pad "_" between symbols: the limit counts symbols
        interleaved = data.add_blank or data.text_frontend == "piper"
        n_symbols = (len(ids) - 1) // 2 if interleaved else len(ids)
        if not data.min_text_len <= n_symbols <= data.max_text_len:
            raise ValueError(f"{n_symbols} symbols outside [{data.min_text_len}, {data.max_text_len}]")
        if duration and duration * data.sample_rate < self.min_samples:
            raise ValueError(f"{duration:.2f} s is shorter than one training segment")
        return ids

    def item(self, item_id: str, wav: torch.Tensor, ids: List[int], sid: int) -> Dict[str, object]:
        """The training item of a waveform (T,) at data.sample_rate, its symbol ids and speaker id."""
        spec = self.spectrogram(wav.unsqueeze(0))[0]  # (F, frames)
        return {"id": item_id, "text": torch.tensor(ids, dtype=torch.long), "spec": spec, "wav": wav, "sid": sid}

    def _text_ids(self, text: str, frontend: Frontend) -> List[int]:
        if self.data.cleaned_text:  # already phonemised (official filelists *.cleaned)
            from processors.text.frontend import cleaned_to_ids, intersperse

            ids = cleaned_to_ids(text, source=text)
            if not ids:
                raise TextError(f"empty phoneme string {text!r}")
            return intersperse(ids) if self.data.add_blank else ids
        return list(frontend(text)["ids_blank"])

    def __len__(self) -> int:
        return len(self.items)

    def durations(self) -> List[float]:
        """Seconds per item from the manifest (for ``train.batching`` by duration)."""
        return [duration for *_, duration in self.items]

    def lengths(self) -> List[int]:
        """Approximate spectrogram frames per item (for length-bucketed batches)."""
        return [int(duration * self.data.sample_rate / self.data.hop_length) for *_, duration in self.items]

    def __getitem__(self, index: int) -> Dict[str, object]:
        item_id, path, ids, sid, _ = self.items[index]
        return self.item(item_id, torch.from_numpy(load_audio(path, self.data.sample_rate)).float(), ids, sid)


def collate_vits(items: List[Dict[str, object]]) -> Dict[str, torch.Tensor]:
    """Zero-pad a list of items into ``text (B, Tx)``, ``spec (B, F, Ty)``, ``wav (B, 1, T)`` + lengths, ``sid``
    and the item ``ids`` (a list of str)."""
    batch = len(items)
    text_len = torch.tensor([len(it["text"]) for it in items], dtype=torch.long)
    spec_len = torch.tensor([it["spec"].size(1) for it in items], dtype=torch.long)
    wav_len = torch.tensor([it["wav"].size(0) for it in items], dtype=torch.long)
    n_freq = items[0]["spec"].size(0)
    text = torch.zeros(batch, int(text_len.max()), dtype=torch.long)
    spec = torch.zeros(batch, n_freq, int(spec_len.max()))
    wav = torch.zeros(batch, 1, int(wav_len.max()))
    for b, it in enumerate(items):
        text[b, : text_len[b]] = it["text"]
        spec[b, :, : spec_len[b]] = it["spec"]
        wav[b, 0, : wav_len[b]] = it["wav"]
    return {
        "text": text, "text_lengths": text_len, "spec": spec, "spec_lengths": spec_len, "wav": wav,
        "wav_lengths": wav_len, "sid": torch.tensor([int(it["sid"]) for it in items], dtype=torch.long),
        "ids": [str(it["id"]) for it in items],
    }  # fmt: skip


def load_datasets(data: VITSDataConfig, n_speakers: int,
                  segment_samples: int) -> Tuple[VITSDataset, Optional[VITSDataset]]:
    return VITSDataset(data.train_manifest, data, n_speakers, min_samples=segment_samples), valid_dataset(data, n_speakers)


def valid_dataset(data: VITSDataConfig, n_speakers: int) -> Optional[VITSDataset]:
    """The validation split's dataset, or None without ``data.valid_manifest``."""
    return VITSDataset(data.valid_manifest, data, n_speakers) if data.valid_manifest else None
