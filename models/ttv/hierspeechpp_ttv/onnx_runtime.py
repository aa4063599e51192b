"""HierSpeech++'s Text-to-Vec on ONNX Runtime: :class:`OnnxTextToVec` runs the three runtime graphs of
:func:`models.ttv.hierspeechpp_ttv.onnx_export.export_runtime` behind the interface the zero-shot TTS uses from
the torch model (``style``, ``generate``, ``config``).

Between the graphs, in Python, is what :meth:`TextToVec.generate` draws and expands: the duration predictor's
noise ``(1, 2, Tx)``, then the durations' expansion of the text-rate prior to frames (each symbol's mean and
log-scale repeated ``w_ceil`` times: the torch path's 0/1 alignment matmul, exactly) and the prior's noise on
the frames. Both noises come from the caller's torch generator in the torch path's order and shapes, so a seeded
sentence gives the torch path's features within float rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from models.base import onnx_backend
from models.ttv.hierspeechpp_ttv.onnx_export import export_runtime

GRAPH_VERSION = "v1"  # bump when the runtime graphs' interface or arithmetic changes
GRAPHS = ("style", "durations", "features")


class OnnxTextToVec:
    """``style(mel, lengths)`` and ``generate(text, text_length, g, ...)`` of a :class:`TextToVec` on
    onnxruntime (CPU), one item per call."""

    backend = "onnxruntime"

    def __init__(self, graphs: Dict[str, Path], config, threads: Optional[int] = None):
        self.sessions = {name: onnx_backend.session(graphs[name], threads) for name in GRAPHS}
        self.config = config

    def style(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """Prompt log-mels ``(B, 80, Tm)`` + lengths ``(B,)`` -> styles ``(B, 256, 1)``."""
        return onnx_backend.run_prompt_styles(self.sessions["style"], mel, mel_lengths)

    def generate(self, text: torch.Tensor, text_length: torch.Tensor, g: torch.Tensor, noise_scale: float = 0.333,
                 noise_scale_w: float = 1.0, length_scale: float = 1.0,
                 generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``text (1, Tx)`` ids -> ``(w2v (1, C_ssl, T), pitch (1, 1, 4T), y_lengths (1,))`` as
        :meth:`TextToVec.generate` with ``generator`` (None: torch's global generator)."""
        if text.size(0) != 1:
            raise ValueError(f"the onnxruntime TTV runs one text at a time, got a batch of {text.size(0)}")
        ids = text[:, :int(text_length[0])]
        m_p, logs_p, w_ceil = self.sessions["durations"].run(None, {
            "input": ids.numpy().astype(np.int64), "g": g.numpy(),
            "duration_noise": torch.randn(1, 2, ids.size(1), generator=generator).numpy(),
            "scales": np.array([length_scale, noise_scale_w], dtype=np.float32)})
        repeats = torch.from_numpy(w_ceil[0, 0]).long()
        frames = max(int(repeats.sum()), 1)  # no frame at all: one frame of zero mean and log-scale, as in torch
        m_p, logs_p = (torch.nn.functional.pad(torch.from_numpy(x).repeat_interleave(repeats, dim=2),
                                               (0, frames - int(repeats.sum()))) for x in (m_p, logs_p))
        z_p = m_p + torch.randn(m_p.shape, generator=generator) * torch.exp(logs_p) * noise_scale
        w2v, pitch = self.sessions["features"].run(None, {"z_p": z_p.numpy(), "g": g.numpy()})
        return torch.from_numpy(w2v), torch.from_numpy(pitch), torch.tensor([frames])


def runtime_for(model, source: Path, threads: Optional[int] = None) -> OnnxTextToVec:
    """The runtime graphs of ``model`` (a TTV loaded from ``source``: an Echelon checkpoint dir or an official
    ``.pth``), exported once per weights file beside it (or under the user cache) and reused after."""
    folder = onnx_backend.graph_dir_for(Path(source), "ttv", f"hierspeechpp-ttv-{GRAPH_VERSION}")
    paths = onnx_backend.ensure_graphs(folder, GRAPHS, lambda tmp: export_runtime(model, tmp))
    return OnnxTextToVec(paths, model.config, threads)
