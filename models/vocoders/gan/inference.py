"""Copy synthesis with a trained GAN vocoder: wav (or saved mel ``.pt``) in -> wav out.

``echelon-infer --ckpt_dir exp/hifigan --inputs a.wav b.pt --output_dir out`` or ``--jobs list.jsonl``
(``{"id", "path"}`` per line, e.g. a manifest; relative paths resolve against its folder). A ``.pt`` input holds a ``(n_mels, T)`` or ``(1, n_mels, T)`` log-mel tensor in this
vocoder's front end. Failing inputs are listed in ``bad_items_<run>.tsv`` (see models/base/inference.py).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import List

import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference, Item, file_items
from models.base.task_inference import read_jsonl
from models.base.tasks import Audio
from models.vocoders.gan.config import VocoderExperimentConfig
from models.vocoders.gan.model import build_generator
from processors.audio import AudioError, load_audio
from processors.spectrogram import VitsMelSpectrogram
from utils.registry import register

log = logging.getLogger(__name__)


@register("inference", "gan_vocoder")
class GANVocoderInference(BaseInference):
    config_class = VocoderExperimentConfig

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu") -> "GANVocoderInference":
        path, cfg, _ = cls.load_checkpoint(ckpt_dir)
        gen = build_generator(cfg.model.generator, cfg.data.n_mel_channels)
        gen.load_state_dict(ckpt.load_model_weights(path, "generator"), strict=True)
        gen.fold_weight_norm()
        pipeline = cls(cfg, {"generator": gen.eval().to(device)}, device)
        pipeline.mel = VitsMelSpectrogram.from_config(cfg.data).to(device)
        return pipeline

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--inputs", nargs="+", action="extend", default=[],
                            help="wav files or saved log-mel .pt files")
        parser.add_argument("--jobs", help='JSONL with {"id", "path"} per line (relative paths: from its folder)')

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, 1, T * hop)``."""
        n_mels = self.config.data.n_mel_channels
        if mel.dim() != 3 or mel.size(1) != n_mels:
            raise ValueError(f"expected a log-mel (B, {n_mels}, T), got shape {tuple(mel.shape)}")
        return self.models["generator"](mel.to(self.device))

    def _mel_of(self, path: Path) -> torch.Tensor:
        if path.suffix == ".pt":
            mel = torch.load(path, map_location="cpu", weights_only=True)
            return mel.unsqueeze(0) if mel.dim() == 2 else mel
        wav = torch.from_numpy(load_audio(path, self.config.data.sample_rate)).to(self.device)
        if wav.numel() < self.config.data.filter_length:
            raise AudioError(f"{path}: shorter than one analysis window ({self.config.data.filter_length} samples)")
        return self.mel(wav.unsqueeze(0))

    def items(self, args: argparse.Namespace) -> List[Item]:
        items = file_items(args.inputs)
        if args.jobs:
            jobs = read_jsonl(args.jobs, ("id", "path"))
            items += [Item(str(job["id"]), Path(job["path"]), str(job["path"])) for job in jobs]
        return items

    def process(self, item: Item) -> Audio:
        wav = self.vocode(self._mel_of(item.data))
        return Audio(wav[0, 0].cpu().numpy(), self.config.data.sample_rate)
