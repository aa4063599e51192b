"""SpeechSR inference: 16 kHz speech (file, array or tensor) -> 24 or 48 kHz.

Python API::

    sr = SpeechSRInference.pretrained()                 # bundled released weights, fast CPU path
    wav48 = sr.upsample(wav16k_array, target_rate=48000)
    sr.upsample_file("in.wav", "out_48k.wav", 48000)    # any input rate: resampled to 16 kHz first

CLI (``bins/infer.py``)::

    python -m bins.infer --model_type speechsr --inputs a.wav b.wav --output_dir out --target_rate 48000
    python -m bins.infer --ckpt_dir exp/speechsr48k --inputs a.wav --output_dir out   # own trained model
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.sr.speechsr.model import INPUT_RATE, SpeechSR
from processors.audio import AudioError, load_audio, save_audio
from utils.registry import register

ArrayLike = Union[np.ndarray, torch.Tensor]


@register("inference", "speechsr")
class SpeechSRInference(BaseInference):
    """Holds one SpeechSR per target rate (bundled release by default, or an Echelon checkpoint).

    Args:
        models: ``{"24000": SpeechSR, "48000": SpeechSR}`` (any subset; missing bundled rates load lazily).
        fast: use :meth:`SpeechSR.optimize_for_inference` (same output up to ~1e-6, ≥3x faster on CPU).
    """

    def __init__(self, models: Dict[str, SpeechSR], device: str | torch.device = "cpu", fast: bool = True,
                 config: Optional[dict] = None, allow_bundled: bool = True):
        super().__init__(config or {}, models, device)
        self.fast = fast
        self.allow_bundled = allow_bundled
        for model in self.models.values():
            self._prepare(model)

    def _prepare(self, model: SpeechSR) -> SpeechSR:
        model.to(self.device).eval()
        if self.fast:
            model.optimize_for_inference()
        return model

    @classmethod
    def pretrained(cls, device: str = "cpu", fast: bool = True) -> "SpeechSRInference":
        """Bundled released checkpoints (loaded on first use of each rate)."""
        return cls({}, device, fast)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: Optional[str | Path], device: str = "cpu") -> "SpeechSRInference":
        """``None`` -> bundled release; an official ``G_*.pth`` file; or an Echelon checkpoint directory."""
        if ckpt_dir is None:
            return cls.pretrained(device)
        path = Path(ckpt_dir)
        if path.is_file():
            # official layout: speechsr48k/G_100000.pth next to speechsr48k/config.json (the rate is only there)
            config = path.parent / "config.json"
            if not config.is_file():
                raise FileNotFoundError(f"official SpeechSR checkpoint {path} needs its config.json alongside "
                                        "(it holds the sampling rate)")
            rate = int(json.loads(config.read_text(encoding="utf-8"))["data"]["sampling_rate"])
            model = SpeechSR.from_pretrained(rate, checkpoint=path, config=config)
            return cls({str(rate): model}, device, allow_bundled=False)
        cdir = ckpt.resolve_checkpoint_dir(path)
        raw = ckpt.read_config(cdir)
        model = SpeechSR(**raw["model"])
        model.load_state_dict(ckpt.load_model_weights(cdir, "generator"), strict=True)
        return cls({str(model.target_rate): model}, device, config=raw, allow_bundled=False)

    def model_for(self, target_rate: int) -> SpeechSR:
        key = str(int(target_rate))
        if key not in self.models:
            if not self.allow_bundled:
                have = ", ".join(sorted(self.models)) or "none"
                raise ValueError(f"this SpeechSR pipeline has no {target_rate} Hz model (has: {have})")
            self.models[key] = self._prepare(SpeechSR.from_pretrained(int(target_rate)))
        return self.models[key]

    @property
    def default_rate(self) -> int:
        return int(next(iter(self.models))) if not self.allow_bundled and self.models else 48000

    @torch.no_grad()
    def upsample(self, wav: ArrayLike, target_rate: Optional[int] = None) -> np.ndarray:
        """16 kHz mono (N,) or batch (B, N) -> float32 array at ``target_rate`` (length int(N * rate / 16k))."""
        rate = self.default_rate if target_rate is None else int(target_rate)
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32) if isinstance(wav, np.ndarray) else wav)
        x = x.to(torch.float32)
        if x.dim() not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(f"upsample expects a non-empty (N,) or (B, N) 16 kHz waveform, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("upsample: input waveform contains NaN or Inf")
        batch = x.view(-1, 1, x.shape[-1]).to(self.device)
        y = self.model_for(rate)(batch).squeeze(1).cpu().numpy()
        return y[0] if x.dim() == 1 else y

    def upsample_file(self, src: str | Path, dst: str | Path, target_rate: Optional[int] = None) -> Path:
        rate = self.default_rate if target_rate is None else int(target_rate)
        wav = load_audio(src, INPUT_RATE)
        return save_audio(dst, self.upsample(wav, rate), rate)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--inputs", nargs="+", required=True, help="audio files (resampled to 16 kHz first)")
        parser.add_argument("--output_dir", required=True)
        parser.add_argument("--target_rate", type=int, choices=(24000, 48000), default=None,
                            help="default: the checkpoint's rate, else 48000")

    def run(self, args: argparse.Namespace) -> List[Path]:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        rate = self.default_rate if args.target_rate is None else args.target_rate
        written, bad = [], []
        for item in args.inputs:
            try:
                written.append(self.upsample_file(item, out_dir / f"{Path(item).stem}_{rate // 1000}k.wav", rate))
            except (AudioError, FileNotFoundError, ValueError) as err:
                bad.append(f"{item}\t{err}")
        if bad:
            (out_dir / "bad_items.tsv").write_text("\n".join(bad) + "\n", encoding="utf-8")
        return written

