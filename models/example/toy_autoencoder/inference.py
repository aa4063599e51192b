"""Inference of the toy autoencoder: wav files in, reconstructed wav files out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from models.example.toy_autoencoder.trainer import ToyExperimentConfig
from processors.audio import AudioError, load_audio, save_audio
from utils.registry import register


@register("inference", "toy_autoencoder")
class ToyInference(BaseInference):
    config_class = ToyExperimentConfig

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu"):
        path, cfg, _ = cls.load_checkpoint(ckpt_dir)
        m = cfg.model
        model = ToyWaveAutoencoder(m.channels, m.kernel_size, m.stride)
        model.load_state_dict(ckpt.load_model_weights(path, "autoencoder"), strict=True)
        return cls(cfg, {"autoencoder": model.eval().to(device)}, device)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--inputs", nargs="+", required=True, help="wav files to reconstruct")
        parser.add_argument("--output_dir", required=True)

    @torch.no_grad()
    def run(self, args: argparse.Namespace) -> List[Path]:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        sr = self.config.data.sample_rate
        written, bad = [], []
        for item in args.inputs:
            try:
                wav = torch.from_numpy(load_audio(item, sr)).to(self.device)
            except (AudioError, FileNotFoundError) as err:
                bad.append(f"{item}\t{err}")
                continue
            recon = self.models["autoencoder"](wav.view(1, 1, -1)).view(-1).clamp(-1, 1)
            written.append(save_audio(out_dir / f"{Path(item).stem}.wav", recon.cpu().numpy(), sr))
        if bad:
            (out_dir / "bad_items.tsv").write_text("\n".join(bad) + "\n", encoding="utf-8")
        return written
