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

Long inputs: inputs longer than ``window_seconds`` run window by window (with a halo of context larger than the
receptive field), and inside a window the network after the interpolation runs in ``chunk_samples`` pieces
(``SpeechSR.optimize_for_inference``), so memory grows only with the waveforms themselves. (When ``N * factor``
is not an integer, a one-shot run spreads the rounding over the whole interpolation grid; windows keep the
exact ``factor``, so the two differ by that sub-sample drift.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base import onnx_backend
from models.base.infer_settings import InferSettings
from models.base.pipeline import PipelineMixin
from models.base.tasks import Audio, AudioInput, Capabilities, SpeechSuperResolution, load_input
from models.base.waveforms import progress
from models.sr.speechsr.checkpoint import load_checkpoint
from models.sr.speechsr.model import DEFAULT_CHUNK_SAMPLES, INPUT_RATE, SpeechSR
from models.sr.speechsr.onnx_export import runtime_for
from modules.vocoders.amp import PrecisionError, set_vocoder_precision
from processors.audio import load_audio, save_audio
from utils.registry import register

WINDOW_HALO = 256  # input samples of context per side for windowed inputs (receptive radius: ~70)

ArrayLike = Union[np.ndarray, torch.Tensor]


class SpeechSRInference:
    """Holds one SpeechSR per target rate (bundled release by default, or an Echelon checkpoint).

    Args:
        models: ``{"24000": SpeechSR, "48000": SpeechSR}`` (any subset; missing bundled rates load lazily).
        fast: use :meth:`SpeechSR.optimize_for_inference` (same output up to ~1e-6, ≥3x faster on CPU).
    """

    def __init__(self, models: Dict[str, SpeechSR], device: str | torch.device = "cpu", fast: bool = True,
                 config: Optional[dict] = None, allow_bundled: bool = True,
                 chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
                 window_seconds: float = 10.0, backend: str = "torch", source: Optional[Path] = None,
                 vocoder_precision: str = "float32"):
        self.config = config or {}
        # "onnxruntime": each model runs its exported graph (models/sr/speechsr/onnx_export.py), CPU only
        self.backend = "onnxruntime" if onnx_backend.on_graphs(backend, device) else "torch"
        self.source = source  # checkpoint dir / .pth the models came from (None: bundled): where graphs are cached
        self.models = dict(models)
        self.device = torch.device(device)
        self.fast = fast
        self.chunk_samples = chunk_samples
        self.window_samples = int(window_seconds * INPUT_RATE)  # longer inputs go window by window (0 = never)
        self.allow_bundled = allow_bundled
        self.check_vocoder_precision(vocoder_precision)
        self.vocoder_precision = vocoder_precision
        for model in self.models.values():
            self._prepare(model)

    def _prepare(self, model: SpeechSR) -> SpeechSR:
        if self.backend == "onnxruntime":
            return runtime_for(model.eval(), self.source)
        model.to(self.device).eval()
        if self.fast:
            model.optimize_for_inference(self.chunk_samples, self.vocoder_precision)
        return model

    def check_vocoder_precision(self, precision: str) -> None:
        """:class:`PrecisionError` unless ``precision`` can apply: a precision other than float32 switches the
        optimised AMP blocks' convolutions, which only the torch backend's fast path has."""
        if precision != "float32" and (self.backend != "torch" or not self.fast):
            raise PrecisionError(f"vocoder_precision {precision} needs the torch backend with fast=True "
                                 "(it switches the optimised AMP blocks' convolutions)")

    def set_vocoder_precision(self, precision: str) -> None:
        """Switch every loaded model's AMP-block convolutions (and later loads) to ``precision``."""
        self.check_vocoder_precision(precision)
        for model in self.models.values():
            set_vocoder_precision(model, precision)
        self.vocoder_precision = precision

    @classmethod
    def pretrained(cls, device: str = "cpu", fast: bool = True, **opts) -> "SpeechSRInference":
        """Bundled released checkpoints (loaded on first use of each rate); ``opts``: ``chunk_samples``,
        ``window_seconds``."""
        return cls({}, device, fast, **opts)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: Optional[str | Path], device: str = "cpu", fast: bool = True,
                        **opts) -> "SpeechSRInference":
        """``None`` -> bundled release; an official ``G_*.pth`` file; or an Echelon checkpoint directory."""
        opts = dict(fast=fast, **opts)
        if ckpt_dir is None:
            return cls.pretrained(device, **opts)
        model, raw, source = load_checkpoint(ckpt_dir)
        return cls({str(model.target_rate): model}, device, config=raw, allow_bundled=False, source=source, **opts)

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
        batch = x.view(-1, 1, x.shape[-1])
        model = self.model_for(rate)
        if self.window_samples <= 0 or batch.shape[-1] <= self.window_samples + 2 * WINDOW_HALO:
            y = model(batch.to(self.device)).squeeze(1).cpu().numpy()
        else:
            y = self._windowed(model, batch).squeeze(1).numpy()
        return y[0] if x.dim() == 1 else y

    def _windowed(self, model: SpeechSR, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, N) -> (B, 1, int(N * factor)) window by window, each with ``WINDOW_HALO`` input samples of
        context on both sides (more than the network's receptive radius): the hidden signal after the
        interpolation, 32 channels at the output rate, is never held for the whole input (3.7 GB for 10 min at
        48 kHz). Window starts are even, so each window's first output sample lies on the output grid."""
        factor = model.target_rate / INPUT_RATE
        total, step = x.shape[-1], self.window_samples - self.window_samples % 2
        pieces = []
        for start in progress(range(0, total, step), -(-total // step), "sr windows"):
            stop = min(start + step, total)
            lo, hi = max(0, start - WINDOW_HALO), min(total, stop + WINDOW_HALO)
            y = model(x[..., lo:hi].to(self.device)).cpu()
            first = round((start - lo) * factor)
            count = int(stop * factor) - int(start * factor)
            pieces.append(y[..., first:first + count])
        return torch.cat(pieces, dim=-1)

    def upsample_file(self, src: str | Path, dst: str | Path, target_rate: Optional[int] = None) -> Path:
        rate = self.default_rate if target_rate is None else int(target_rate)
        wav = load_audio(src, INPUT_RATE)
        return save_audio(dst, self.upsample(wav, rate), rate)


@dataclass
class SpeechSRSettings(InferSettings):
    target_rate: Optional[int] = None  # 24000 | 48000; default: the checkpoint's rate, else 48000
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES  # output samples per window of the chunked network (0 = one shot)
    window_seconds: float = 10.0  # longer inputs run window by window (bounded memory; 0 = one shot)
    fast: bool = True  # folded weight norm, polyphase activations (same output up to ~1e-6)
    vocoder_precision: str = "float32"  # float32 | bfloat16 (opt-in, faster on CPUs with native bf16; not exact)


@register("pipeline", "speechsr")
class SpeechSRPipeline(SpeechSuperResolution, PipelineMixin):
    """Task API: any-rate speech -> ``sample_rate`` (24/48 kHz). Component ``model``: Echelon dir or official
    ``G_*.pth`` (+ config.json); absent: the bundled release."""

    task = "sr"
    input_rate = INPUT_RATE  # inputs at other rates are resampled to it (the runner says so per item)
    settings_class = SpeechSRSettings
    components = {"model": False}
    main_component = "model"
    backends = onnx_backend.BACKENDS

    def __init__(self, inference: SpeechSRInference, settings: SpeechSRSettings):
        self.inference = inference
        self.settings = settings
        rate = settings.target_rate if settings.target_rate is not None else inference.default_rate
        if rate not in (24000, 48000):
            raise ckpt.CheckpointError(f"infer.target_rate must be 24000 or 48000, got {rate}")
        inference.model_for(rate)  # a checkpoint without that rate fails now, not per item
        self.sample_rate = int(rate)

    @classmethod
    def from_components(cls, components, settings: SpeechSRSettings, device: str = "cpu",
                        backend: Optional[str] = None) -> "SpeechSRPipeline":
        inference = SpeechSRInference.from_checkpoint(components.get("model"), device, settings.fast,
                                                      chunk_samples=settings.chunk_samples,
                                                      window_seconds=settings.window_seconds,
                                                      backend=backend or "torch",
                                                      vocoder_precision=settings.vocoder_precision)
        return cls(inference, settings)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"sr"}))

    def output_rate(self) -> int:
        rate = self.settings.target_rate if self.settings.target_rate is not None else self.inference.default_rate
        if rate not in (24000, 48000):
            raise ValueError(f"target_rate must be 24000 or 48000, got {rate}")
        return int(rate)

    def upsample(self, waveforms: Sequence[AudioInput], seed: Optional[int] = None) -> List[Audio]:
        return [Audio(self.inference.upsample(load_input(w, INPUT_RATE).waveform, self.sample_rate), self.sample_rate)
                for w in waveforms]
