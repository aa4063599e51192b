"""Inference of the toy autoencoder: wav files in, reconstructed wav files out."""

from __future__ import annotations

import argparse
from typing import List

import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference, Item, file_items
from models.base.tasks import Audio
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from models.example.toy_autoencoder.config import ToyExperimentConfig
from processors.audio import load_audio
from utils.registry import register


@register("inference", "toy_autoencoder")
class ToyInference(BaseInference):
    config_class = ToyExperimentConfig

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu"):
        path, cfg, _ = cls.load_checkpoint(ckpt_dir)
        model = ToyWaveAutoencoder.from_config(cfg.model)
        model.load_state_dict(ckpt.load_model_weights(path, "autoencoder"), strict=True)
        return cls(cfg, {"autoencoder": model.eval().to(device)}, device)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--inputs", nargs="+", action="extend", default=[], help="wav files to reconstruct")

    def items(self, args: argparse.Namespace) -> List[Item]:
        return file_items(args.inputs)

    @torch.no_grad()
    def process(self, item: Item) -> Audio:
        sr = self.config.data.sample_rate
        wav = torch.from_numpy(load_audio(item.data, sr)).to(self.device)
        recon = self.models["autoencoder"](wav.view(1, 1, -1)).view(-1).clamp(-1, 1)
        return Audio(recon.cpu().numpy(), sr)
