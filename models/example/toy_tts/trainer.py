"""Toy TTS training: (phoneme ids, given durations, log-mel) rows; L1 on the mel + MSE on log(1 + frames)."""

from __future__ import annotations

import logging
from typing import Dict, List

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from models.base.trainer import BaseTrainer
from models.example.toy_tts.config import ToyTTSDataConfig, ToyTTSExperimentConfig
from models.example.toy_tts.model import ToyTTS
from modules.commons import sequence_mask
from processors.audio import load_audio
from processors.data.durations import fit_durations, text_with_durations
from processors.data.manifest import read_manifest
from processors.spectrogram import VitsMelSpectrogram
from processors.text.frontend import TextFrontend
from utils.registry import register

log = logging.getLogger(__name__)


def mel_extractor(data: ToyTTSDataConfig) -> VitsMelSpectrogram:
    m = data.mel
    return VitsMelSpectrogram(m.sample_rate, m.n_fft, m.hop_length, m.win_length, m.n_mels, m.f_min, m.f_max)


class DurationTTSDataset(Dataset):
    """Items ``(ids (N,), frames (N,), log-mel (n_mels, T))`` with ``frames.sum() == T``; the mel is computed once."""

    def __init__(self, manifest: str, data: ToyTTSDataConfig):
        self.mel, self.sample_rate, hop = mel_extractor(data), data.mel.sample_rate, data.mel.hop_length
        self.rows, self.skipped, self._cache = [], [], {}
        frontend = TextFrontend(add_blank=False)
        for entry in read_manifest(manifest):
            try:
                if entry.duration > data.max_seconds:
                    raise ValueError(f"{entry.duration:.1f} s is longer than data.max_seconds={data.max_seconds}")
                ids, durations = text_with_durations(entry, frontend, hop / self.sample_rate)
                self.rows.append((entry.path, ids, fit_durations(durations, int(entry.duration * self.sample_rate) // hop), entry.duration))
            except ValueError as err:
                self.skipped.append((entry.id, str(err)))
        if self.skipped:
            log.warning("%s: skipped %d row(s), e.g. %s", manifest, len(self.skipped), self.skipped[0])
        if not self.rows:
            raise ValueError(f"{manifest}: no usable row ({self.skipped[:1]})")

    def __len__(self) -> int:
        return len(self.rows)

    def durations(self) -> List[float]:
        return [row[3] for row in self.rows]

    def __getitem__(self, index: int):
        path, ids, frames, _ = self.rows[index]
        if index not in self._cache:
            with torch.no_grad():
                mel = self.mel(torch.from_numpy(load_audio(path, self.sample_rate)).unsqueeze(0))[0]
            self._cache[index] = mel[:, : int(sum(frames))]
        return torch.tensor(ids), torch.tensor(frames), self._cache[index]


@register("trainer", "toy_tts")
class ToyTTSTrainer(BaseTrainer):
    config_class = ToyTTSExperimentConfig

    def build_models(self):
        return {"tts": ToyTTS.from_config(self.cfg.model)}

    def build_datasets(self):
        d = self.cfg.data
        return DurationTTSDataset(d.train_manifest, d), DurationTTSDataset(d.valid_manifest, d) if d.valid_manifest else None

    def collate(self, items):
        ids, frames, mels = zip(*items)
        return {"ids": pad_sequence(ids, True), "lengths": torch.tensor([len(i) for i in ids]),
                "frames": pad_sequence(frames, True), "mel": pad_sequence([m.t() for m in mels], True).transpose(1, 2),
                "mel_lengths": torch.tensor([m.size(1) for m in mels])}

    def losses(self, batch) -> Dict[str, torch.Tensor]:
        out = self.models["tts"](batch["ids"], batch["lengths"], batch["frames"])
        frame_mask = sequence_mask(batch["mel_lengths"], batch["mel"].size(2)).unsqueeze(1)
        mel = (out["mel"] - batch["mel"]).abs().masked_select(frame_mask).mean()
        target = torch.log1p(batch["frames"].float())
        duration = (out["log_durations"] - target).pow(2).masked_select(out["mask"].bool()).mean()
        return {"mel_l1": mel, "duration_mse": duration}

    def train_step(self, batch):
        losses = self.losses(batch)
        self.optimize("tts", losses["mel_l1"] + losses["duration_mse"])
        return losses

    def valid_step(self, batch, index: int):
        return {name: float(value) for name, value in self.losses(batch).items()}
