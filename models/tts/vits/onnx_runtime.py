"""VITS through ONNX Runtime: :class:`OnnxVITS` runs the two runtime graphs of :mod:`models.tts.vits.onnx_export`
with the ``infer`` interface :class:`~models.tts.vits.inference.VITSSynthesizer` uses from the torch model.

Both noises are drawn with torch's generator (the call's own ``generator`` when given, else the global one) in
the order and shapes :meth:`VITS.infer` draws them (the
duration predictor's ``(1, 2, T)``, then the prior's ``(1, C, frames)``, drawn on its transposed
``(1, frames, C)`` layout), so a seeded call gives the torch
path's waveform (within float rounding). Items of a batch run one by one (the decoder is unmasked: each item is
decoded on its own frames, like ``decode_per_item=True``).

:func:`runtime_for_checkpoint` exports the graphs once per weights file (sha256) into the checkpoint's folder
(:func:`models.base.onnx_backend.cached_graph_dir`) and reuses them afterwards.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from models.base import onnx_backend
from models.base.call_threads import threads_of_call
from models.tts.vits.model import VITS
from models.tts.vits.onnx_export import export_runtime

log = logging.getLogger(__name__)
GRAPH_VERSION = "v5"  # bump when the runtime graphs' interface or arithmetic changes


class OnnxVITS:
    """``infer(x, x_lengths, sid, noise_scale, length_scale, noise_scale_w)`` -> ``{"wav", "lengths"}``.

    With ``threads`` >= 2 and ``windowed_graph`` given, the acoustic half runs the graph whose decoder takes two
    time windows on the batch axis (same waveform; :mod:`models.tts.vits.onnx_export`): onnxruntime's
    blocked-channel convolutions, which make the graphs faster than Piper's on one thread, put a second thread to
    work on the decoder's late 32- and 64-channel layers only for a batch of two. On one thread the windows would
    only cost their halo, so the plain acoustic graph runs there.
    """

    def __init__(self, text_graph: Path, acoustic_graph: Path, threads: Optional[int] = None,
                 windowed_graph: Optional[Path] = None):
        # no fixed count: each call runs on the threads models.base.call_threads gives it (a server: all the cores
        # for a call that runs alone, a share for calls that run together), else on torch's count
        self.follows_caller = threads is None
        threads = int(threads or torch.get_num_threads())
        self.threads, self.graphs = threads, (text_graph, acoustic_graph, windowed_graph)
        self._sessions: Dict[int, tuple] = {}
        self._sessions_lock = threading.Lock()
        self.text, self.acoustic, self.acoustic_graph = self.sessions(threads)
        # a deterministic duration predictor draws no noise (and its graph has no such input)
        self.stochastic_durations = "duration_noise" in {i.name for i in self.text.get_inputs()}

    def sessions(self, threads: int) -> tuple:
        """(text session, acoustic session, acoustic graph) on ``threads`` intra-op threads, opened once."""
        with self._sessions_lock:
            found = self._sessions.get(threads)
            if found is None:
                text_graph, acoustic_graph, windowed_graph = self.graphs
                graph = windowed_graph if threads > 1 and windowed_graph is not None else acoustic_graph
                found = (onnx_backend.session(text_graph, threads), onnx_backend.session(graph, threads), graph)
                self._sessions[threads] = found
            return found

    def infer_one(self, ids: np.ndarray, sid: Optional[int], scales: np.ndarray,
                  generator: Optional[torch.Generator] = None) -> np.ndarray:
        """``ids (T,)`` -> float32 waveform ``(samples,)``."""
        text, acoustic = (self.sessions(threads_of_call(self.threads))[:2] if self.follows_caller
                          else (self.text, self.acoustic))
        lengths = np.array([ids.shape[0]], dtype=np.int64)
        extra: Dict[str, np.ndarray] = {} if sid is None else {"sid": np.array([sid], dtype=np.int64)}
        m_p, logs_p, w_ceil = text.run(None, self.text_feeds(ids, sid, scales, generator))
        frames = max(int(w_ceil.sum()), 1)
        # VITS.infer draws randn_like of its expanded prior, a transposed (1, frames, C) tensor: the draw on that
        # layout (torch fills non-contiguous tensors with another kernel than contiguous ones)
        noise = torch.empty(1, frames, m_p.shape[1]).transpose(1, 2).normal_(generator=generator).contiguous().numpy()
        (wav,) = acoustic.run(None, {"m_p": m_p, "logs_p": logs_p, "w_ceil": w_ceil, "input_lengths": lengths,
                                          "scales": scales, "noise": noise, **extra})
        return wav.reshape(-1)

    def text_feeds(self, ids: np.ndarray, sid: Optional[int], scales: np.ndarray,
                   generator: Optional[torch.Generator] = None) -> Dict[str, np.ndarray]:
        """The text graph's inputs for ``ids (T,)``; draws its duration noise when the predictor is stochastic."""
        feeds = {"input": ids[None].astype(np.int64), "input_lengths": np.array([ids.shape[0]], dtype=np.int64),
                 "scales": scales}
        if sid is not None:
            feeds["sid"] = np.array([sid], dtype=np.int64)
        if self.stochastic_durations:
            feeds["duration_noise"] = torch.randn(1, 2, ids.shape[0], generator=generator).numpy()
        return feeds

    def infer(self, x: torch.Tensor, x_lengths: torch.Tensor, sid: Optional[torch.Tensor] = None,
              noise_scale: float = 1.0, length_scale: float = 1.0, noise_scale_w: float = 1.0,
              generator: Optional[torch.Generator] = None, **_: object) -> Dict[str, torch.Tensor]:
        """Same arguments and ``wav (B, 1, samples)`` / ``lengths (B,)`` as :meth:`VITS.infer`. Sessions may run
        in several threads at once (onnxruntime's ``run`` is thread-safe)."""
        scales = np.array([noise_scale, length_scale, noise_scale_w], dtype=np.float32)
        wavs = [self.infer_one(x[b, : int(x_lengths[b])].cpu().numpy(),
                               None if sid is None else int(sid.reshape(-1)[b]), scales, generator)
                for b in range(x.size(0))]
        lengths = torch.tensor([w.shape[0] for w in wavs])
        out = torch.zeros(len(wavs), 1, int(lengths.max()))
        for b, wav in enumerate(wavs):
            out[b, 0, : wav.shape[0]] = torch.from_numpy(wav)
        return {"wav": out, "lengths": lengths}


def runtime_for_checkpoint(model: VITS, ckpt_dir: Path, threads: Optional[int] = None) -> OnnxVITS:
    """The runtime graphs of the checkpoint's generator (exported on first use, then reused)."""
    sha = onnx_backend.weights_sha256(ckpt_dir, "generator")
    return runtime_for_weights(model, onnx_backend.cached_graph_dir(ckpt_dir, sha), threads)


def runtime_for_weights(model: VITS, folder: Path, threads: Optional[int] = None) -> OnnxVITS:
    folder = folder.with_name(f"{folder.name}-vits-{GRAPH_VERSION}")

    def write_all(tmp: Path) -> None:
        log.info("exporting the VITS runtime graphs to %s (once per weights file)", folder)
        export_runtime(model, tmp / "text.onnx", tmp / "acoustic.onnx", tmp / "acoustic_windows.onnx")

    paths = onnx_backend.ensure_graphs(folder, ("text", "acoustic", "acoustic_windows"), write_all)
    return OnnxVITS(paths["text"], paths["acoustic"], threads, paths["acoustic_windows"])
