"""The HierSpeech++ synthesizer on ONNX Runtime: :class:`OnnxSynthesizer` runs the two runtime graphs of
:func:`models.tts.hierspeechpp.onnx_export.export_runtime` behind the inference interface the pipelines use from
the torch model (``style``, ``convert``, ``config``, ``hop_length``), so the voice-conversion pipeline
(:class:`~models.tts.hierspeechpp.inference.VoiceConverter`) and the zero-shot TTS take either.

What stays in Python is what the torch backend also computes there: F0 (YAAPT / WORLD), the SSL features, the
prompt's mel spectrogram, the noise (drawn by the pipelines with torch's generator, so a seeded call gives the
torch path's waveform within float rounding). Items of a batch run one by one on their own lengths, as the torch
path's masked padding makes them independent of their batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from models.base import onnx_backend
from models.tts.hierspeechpp.onnx_export import export_runtime

GRAPH_VERSION = "v1"  # bump when the runtime graphs' interface or arithmetic changes
GRAPHS = ("style", "synthesis")


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32, copy=False)


class OnnxSynthesizer:
    """``style(mel, lengths)`` and ``convert(ssl, lengths, log_f0, g, noise_scale, noise)`` of a
    :class:`~models.tts.hierspeechpp.model.HierSpeechPPSynthesizer` on onnxruntime (CPU)."""

    backend = "onnxruntime"

    def __init__(self, graphs: Dict[str, Path], config, hop_length: int, threads: Optional[int] = None):
        self.style_session = onnx_backend.session(graphs["style"], threads)
        self.synthesis_session = onnx_backend.session(graphs["synthesis"], threads)
        self.config, self.hop_length = config, int(hop_length)

    def style(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """Prompt log-mels ``(B, n_mels, Tm)`` (zero-padded) + lengths ``(B,)`` -> styles ``(B, gin, 1)``."""
        return onnx_backend.run_prompt_styles(self.style_session, mel, mel_lengths)

    def convert(self, ssl: torch.Tensor, lengths: torch.Tensor, log_f0: torch.Tensor, g: torch.Tensor,
                noise_scale: float = 0.333, noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Batched voice conversion as :meth:`HierSpeechPPSynthesizer.convert`: ``ssl (B, C, T)`` (zero-padded),
        ``lengths (B,)``, ``log_f0 (B, 1, 4T)``, ``g (B, gin, 1)``, ``noise (B, inter, T)`` (default: a fresh
        draw) -> ``{"wav": (B, 1, hop T)}``, zero past each item's length."""
        if noise is None:
            noise = torch.randn(ssl.size(0), self.config.inter_channels, ssl.size(2))
        wav = torch.zeros(ssl.size(0), 1, ssl.size(2) * self.hop_length)
        scale = np.array([noise_scale], dtype=np.float32)
        for b, n in enumerate(lengths.tolist()):
            (out,) = self.synthesis_session.run(None, {
                "ssl": _numpy(ssl[b:b + 1, :, :n]), "log_f0": _numpy(log_f0[b:b + 1, :, :4 * n]),
                "g": _numpy(g[b:b + 1]), "noise": _numpy(noise[b:b + 1, :, :n]), "noise_scale": scale})
            wav[b, :, :n * self.hop_length] = torch.from_numpy(out[0])
        return {"wav": wav}


def runtime_for(model, source: Path, threads: Optional[int] = None) -> OnnxSynthesizer:
    """The runtime graphs of ``model`` (a synthesizer loaded from ``source``: an Echelon checkpoint dir or an
    official ``.pth``), exported once per weights file beside it (or under the user cache) and reused after."""
    folder = onnx_backend.graph_dir_for(Path(source), "generator", f"hierspeechpp-{GRAPH_VERSION}")
    paths = onnx_backend.ensure_graphs(folder, GRAPHS, lambda tmp: export_runtime(model, tmp))
    return OnnxSynthesizer(paths, model.config, model.hop_length, threads)
