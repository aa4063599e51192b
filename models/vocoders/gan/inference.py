"""Copy synthesis with a trained GAN vocoder: wav (or saved mel ``.pt``) in -> wav out.

``echelon-infer --ckpt_dir exp/hifigan --inputs a.wav b.pt --output_dir out`` or ``--jobs list.jsonl``
(``{"id", "path"}`` per line, e.g. a manifest; relative paths resolve against its folder). A ``.pt`` input holds a ``(n_mels, T)`` or ``(1, n_mels, T)`` log-mel tensor in this
vocoder's front end. Failing inputs are listed in ``bad_items.tsv``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import List, Tuple

import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.vocoders.gan.config import VocoderExperimentConfig
from models.vocoders.gan.model import build_generator
from models.vocoders.gan.trainer import mel_extractor
from processors.audio import AudioError, load_audio, save_audio
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
        pipeline.mel = mel_extractor(cfg.data).to(device)
        return pipeline

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--inputs", nargs="+", default=[], help="wav files or saved log-mel .pt files")
        parser.add_argument("--jobs", help='JSONL with {"id", "path"} per line')
        parser.add_argument("--output_dir", required=True)

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
        wav = torch.from_numpy(load_audio(path, self.config.data.sampling_rate)).to(self.device)
        if wav.numel() < self.config.data.filter_length:
            raise AudioError(f"{path}: shorter than one analysis window ({self.config.data.filter_length} samples)")
        return self.mel(wav.unsqueeze(0))

    def run(self, args: argparse.Namespace) -> List[Path]:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        items: List[Tuple[str, Path]] = [(Path(p).stem, Path(p)) for p in args.inputs]
        if args.jobs:
            jobs = Path(args.jobs)
            for line in jobs.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    job = json.loads(line)
                    path = Path(job["path"])  # relative paths are relative to the jobs file (manifest convention)
                    items.append((str(job["id"]), path if path.is_absolute() else jobs.parent / path))
        if not items:
            raise SystemExit("error: nothing to vocode (give --inputs or --jobs)")
        written, bad = [], []
        for uid, path in items:
            try:
                wav = self.vocode(self._mel_of(path))
            except (AudioError, ValueError, OSError, RuntimeError) as err:
                bad.append((uid, str(err)))
                continue
            written.append(save_audio(out_dir / f"{uid}.wav", wav[0, 0].cpu().numpy(), self.config.data.sampling_rate))
        if bad:
            (out_dir / "bad_items.tsv").write_text("".join(f"{u}\t{r}\n" for u, r in bad), encoding="utf-8")
            log.warning("%d input(s) failed, listed in %s", len(bad), out_dir / "bad_items.tsv")
        return written
