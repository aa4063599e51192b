"""SpeechSR -> ONNX (16 kHz audio -> 24 or 48 kHz), and SpeechSR on onnxruntime.

Graph: input ``audio`` float32 ``(B, 1, N)`` at 16 kHz (N dynamic) -> ``audio_out`` ``(B, 1, floor(N * factor))``
with factor 1.5 or 3. The linear interpolation is written out (positions, gather, blend) because the traced
``F.interpolate(size=int(N * factor))`` would freeze the output length; it follows PyTorch's arithmetic
(``align_corners=False``, scale ``N / out`` in float32), so any N gives the torch model's output. The anti-aliased
activations run their plain (zero-stuffing) form: the polyphase and channels-last rewrites of the torch fast path
are CPU-kernel choices that onnxruntime makes itself.

:class:`OnnxSpeechSR` stands in for a :class:`SpeechSR` inside :class:`SpeechSRInference` (``target_rate``,
called on ``(B, 1, N)`` tensors), so windowing of long inputs stays the same.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from torch import nn

from models.base import checkpoint as ckpt
from models.base import onnx_backend
from models.sr.speechsr.checkpoint import load_checkpoint
from models.sr.speechsr.model import PRETRAINED, PRETRAINED_DIR, SpeechSR
from modules.alias_free import set_polyphase
from modules.weight_norm import fold_weight_norm
from utils.config import ConfigError
from utils.registry import register

log = logging.getLogger(__name__)
GRAPH_VERSION = "v1"
EXAMPLE_SAMPLES = 4000


def linear_resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``(B, C, N) -> (B, C, floor(N * factor))`` as ``F.interpolate(size=..., mode="linear")`` computes it, with
    the lengths kept as graph values."""
    n = torch.tensor(x.shape[-1], dtype=torch.float32) if not torch.jit.is_tracing() else \
        torch._shape_as_tensor(x)[-1].to(torch.float32)
    out = torch.floor(n * factor)
    scale = n / out
    # PyTorch rounds scale * (i + 0.5) - 0.5 once (a fused multiply-add); the float64 product of two float32
    # values is exact, so rounding the float64 result to float32 gives the same positions
    steps = torch.arange(out.to(torch.long), dtype=torch.float32) + 0.5
    positions = torch.clamp_min((scale.double() * steps.double() - 0.5).float(), 0.0)
    lower = positions.to(torch.long)
    weight = positions - lower.to(torch.float32)
    upper = torch.minimum(lower + 1, n.to(torch.long) - 1)
    return x.index_select(-1, lower) * (1.0 - weight) + x.index_select(-1, upper) * weight


class SpeechSRGraph(nn.Module):
    """The one-shot SpeechSR forward with a traceable interpolation."""

    def __init__(self, model: SpeechSR):
        super().__init__()
        self.dec = model.dec

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        h = linear_resize(self.dec.conv_pre(audio), self.dec.upsample_factor)
        return self.dec._post_interpolation(h)


def export_speechsr(model: SpeechSR, out: str | Path) -> Path:
    model = model.eval()
    fold_weight_norm(model)
    set_polyphase(model, False)
    example = torch.randn(1, 1, EXAMPLE_SAMPLES) * 0.1
    return onnx_backend.export_graph(
        SpeechSRGraph(model), (example,), out, ["audio"], ["audio_out"],
        {"audio": {0: "batch_size", 2: "samples"}, "audio_out": {0: "batch_size", 2: "samples_out"}},
        {"model_type": "speechsr", "input_sample_rate": 16000, "sample_rate": model.target_rate})


def load_for_export(ckpt_dir: Optional[str | Path], target_rate: int = 48000) -> SpeechSR:
    """An Echelon checkpoint dir, an official ``G_*.pth`` (config.json beside it), or None: the bundled release."""
    return SpeechSR.from_pretrained(target_rate) if ckpt_dir is None else load_checkpoint(ckpt_dir).model


@register("exporter", "speechsr")
def export_checkpoint(ckpt_dir: Optional[str | Path], out: str | Path, target_rate: int = 48000) -> List[Path]:
    """``echelon-export onnx`` of SpeechSR (``ckpt_dir`` None: the bundled release for ``target_rate``)."""
    if ckpt_dir is None and target_rate not in PRETRAINED:  # before anything is loaded
        raise ConfigError(f"target_rate {target_rate}: the bundled SpeechSR releases are "
                          f"{' and '.join(map(str, sorted(PRETRAINED)))} Hz")
    return [export_speechsr(load_for_export(ckpt_dir, target_rate), out)]


class OnnxSpeechSR:
    """A :class:`SpeechSR` look-alike running the exported graph: ``(B, 1, N)`` tensor -> ``(B, 1, M)``."""

    def __init__(self, graph: Path, target_rate: int, threads: Optional[int] = None):
        self.session = onnx_backend.session(graph, threads)
        self.target_rate = int(target_rate)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        (y,) = self.session.run(None, {"audio": x.detach().cpu().numpy().astype(np.float32)})
        return torch.from_numpy(y)


def runtime_for(model: SpeechSR, source: Optional[Path]) -> OnnxSpeechSR:
    """The graph of ``model`` exported once per weights (``source``: its checkpoint dir or ``.pth``; None: the
    bundled release, cached under the user cache since the package folder may be read-only)."""
    name = f"speechsr{model.target_rate // 1000}k-{GRAPH_VERSION}"
    if source is None:
        folder = onnx_backend.user_cache_dir(ckpt.sha256_of(PRETRAINED_DIR / PRETRAINED[model.target_rate][0]))
        folder = folder.with_name(f"{folder.name}-{name}")
    else:
        folder = onnx_backend.graph_dir_for(source, "generator", name)
    paths = onnx_backend.ensure_graphs(folder, ("speechsr",), lambda tmp: export_speechsr(model, tmp / "speechsr.onnx"))
    return OnnxSpeechSR(paths["speechsr"], model.target_rate)
