"""SpeechSR inference: 16 kHz speech (file, array or tensor) -> 24 or 48 kHz.

Python API::

    sr = SpeechSRInference.pretrained()                 # bundled released weights, fast CPU path
    wav48 = sr.upsample(wav16k_array, target_rate=48000)
    sr.upsample_file("in.wav", "out_48k.wav", 48000)    # any input rate: resampled to 16 kHz first
    up = load_pipeline({"pipeline": "speechsr", "infer": {"target_rate": 24000}})   # task API
    up.upsample(["in.wav"])[0]                          # -> Audio at 24 kHz

CLI (``bins/infer.py``; the pipeline ``speechsr``, component ``model`` optional = bundled release)::

    echelon-infer --model_type speechsr --inputs a.wav b.wav --output_dir out --target_rate 48000
    echelon-infer --ckpt_dir exp/speechsr48k --inputs a.wav --output_dir out   # own trained model

Long inputs: after the (linear) interpolation the network runs in windows (``SpeechSR.optimize_for_inference``,
``chunk_samples``), so memory grows only with the waveforms themselves, not with the network's activations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.pipeline import PipelineMixin
from models.base.tasks import Audio, AudioInput, Capabilities, SpeechSuperResolution, load_input
from models.sr.speechsr.model import INPUT_RATE, SpeechSR, build_model
from models.sr.speechsr.trainer import SpeechSRModelConfig
from processors.audio import load_audio, save_audio
from utils.config import validate
from utils.registry import register

ArrayLike = Union[np.ndarray, torch.Tensor]


class SpeechSRInference:
    """Holds one SpeechSR per target rate (bundled release by default, or an Echelon checkpoint).

    Args:
        models: ``{"24000": SpeechSR, "48000": SpeechSR}`` (any subset; missing bundled rates load lazily).
        fast: use :meth:`SpeechSR.optimize_for_inference` (same output up to ~1e-6, ≥3x faster on CPU).
    """

    def __init__(self, models: Dict[str, SpeechSR], device: str | torch.device = "cpu", fast: bool = True,
                 config: Optional[dict] = None, allow_bundled: bool = True, chunk_samples: int = 8192):
        self.config = config or {}
        self.models = dict(models)
        self.device = torch.device(device)
        self.fast = fast
        self.chunk_samples = chunk_samples
        self.allow_bundled = allow_bundled
        for model in self.models.values():
            self._prepare(model)

    def _prepare(self, model: SpeechSR) -> SpeechSR:
        model.to(self.device).eval()
        if self.fast:
            model.optimize_for_inference(self.chunk_samples)
        return model

    @classmethod
    def pretrained(cls, device: str = "cpu", fast: bool = True, chunk_samples: int = 8192) -> "SpeechSRInference":
        """Bundled released checkpoints (loaded on first use of each rate)."""
        return cls({}, device, fast, chunk_samples=chunk_samples)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: Optional[str | Path], device: str = "cpu", fast: bool = True,
                        chunk_samples: int = 8192) -> "SpeechSRInference":
        """``None`` -> bundled release; an official ``G_*.pth`` file; or an Echelon checkpoint directory."""
        opts = dict(fast=fast, chunk_samples=chunk_samples)
        if ckpt_dir is None:
            return cls.pretrained(device, **opts)
        path = Path(ckpt_dir)
        if path.is_file():
            # official layout: speechsr48k/G_100000.pth next to speechsr48k/config.json (the rate is only there)
            config = path.parent / "config.json"
            if not config.is_file():
                raise ckpt.CheckpointNotFoundError(f"official SpeechSR checkpoint {path} needs its config.json alongside "
                                        "(it holds the sampling rate)")
            rate = int(json.loads(config.read_text(encoding="utf-8"))["data"]["sampling_rate"])
            model = SpeechSR.from_pretrained(rate, checkpoint=path, config=config)
            return cls({str(rate): model}, device, allow_bundled=False, **opts)
        cdir = ckpt.resolve_checkpoint_dir(path)
        raw = ckpt.expect_model_type(cdir, "speechsr")
        model = build_model(validate(raw.get("model", {}), SpeechSRModelConfig, "model"))
        ckpt.load_state_dict_strict(model, ckpt.load_model_weights(cdir, "generator"), str(cdir))
        return cls({str(model.target_rate): model}, device, config=raw, allow_bundled=False, **opts)

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


@dataclass
class SpeechSRSettings:
    target_rate: Optional[int] = None  # 24000 | 48000; default: the checkpoint's rate, else 48000
    chunk_samples: int = 8192  # output samples per window of the chunked network (0 = one shot)
    fast: bool = True  # folded weight norm, polyphase activations (same output up to ~1e-6)


@register("pipeline", "speechsr")
class SpeechSRPipeline(SpeechSuperResolution, PipelineMixin):
    """Task API: any-rate speech -> ``sample_rate`` (24/48 kHz). Component ``model``: Echelon dir or official
    ``G_*.pth`` (+ config.json); absent: the bundled release."""

    task = "sr"
    settings_class = SpeechSRSettings
    components = {"model": False}
    main_component = "model"

    def __init__(self, inference: SpeechSRInference, settings: SpeechSRSettings):
        self.inference = inference
        self.settings = settings
        rate = settings.target_rate if settings.target_rate is not None else inference.default_rate
        if rate not in (24000, 48000):
            raise ckpt.CheckpointError(f"infer.target_rate must be 24000 or 48000, got {rate}")
        inference.model_for(rate)  # a checkpoint without that rate fails now, not per item
        self.sample_rate = int(rate)

    @classmethod
    def from_components(cls, components, settings: SpeechSRSettings, device: str = "cpu") -> "SpeechSRPipeline":
        inference = SpeechSRInference.from_checkpoint(components.get("model"), device, settings.fast,
                                                      settings.chunk_samples)
        return cls(inference, settings)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"sr"}))

    def upsample(self, waveforms: Sequence[AudioInput], seed: Optional[int] = None) -> List[Audio]:
        return [Audio(self.inference.upsample(load_input(w, INPUT_RATE).waveform, self.sample_rate), self.sample_rate)
                for w in waveforms]
