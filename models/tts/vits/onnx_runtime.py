"""VITS through ONNX Runtime: :class:`OnnxVITS` runs the two runtime graphs of :mod:`models.tts.vits.onnx_export`
with the ``infer`` interface :class:`~models.tts.vits.inference.VITSSynthesizer` uses from the torch model.

Both noises are drawn with torch's generator in the order and shapes :meth:`VITS.infer` draws them (the
duration predictor's ``(1, 2, T)``, then the prior's ``(1, C, frames)``, drawn on its transposed
``(1, frames, C)`` layout), so a seeded call gives the torch
path's waveform (within float rounding). Items of a batch run one by one (the decoder is unmasked: each item is
decoded on its own frames, like ``decode_per_item=True``).

:func:`runtime_for_checkpoint` exports the graphs once per weights file (sha256) into the checkpoint's folder
(:func:`models.base.onnx_backend.cached_graph_dir`) and reuses them afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from models.base import onnx_backend
from models.tts.vits.model import VITS
from models.tts.vits.onnx_export import export_runtime
from utils.threads import shared_pool

log = logging.getLogger(__name__)
GRAPH_VERSION = "v2"  # bump when the runtime graphs' interface or arithmetic changes


class OnnxVITS:
    """``infer(x, x_lengths, sid, noise_scale, length_scale, noise_scale_w)`` -> ``{"wav", "lengths"}``.

    With ``threads`` >= 2 and the acoustic graph's ``receptive_frames`` known, an utterance of at least
    ``MIN_PIECE_FRAMES`` frames a thread is decoded as that many time pieces at once, each on one thread: the
    pieces end at phoneme boundaries and are decoded with ``receptive_frames`` of context on each side, so the
    joined waveform is the one-pass waveform (same arithmetic per sample). onnxruntime's blocked-channel
    convolutions, which make the graph faster than Piper's on one thread, gain little from a second thread on
    these height-1 images (joe voice, acoustic graph: 0.207 s on one thread, 0.168 s on two; as two pieces on
    one thread each: 0.12 s).
    """

    MIN_PIECE_FRAMES = 128

    def __init__(self, text_graph: Path, acoustic_graph: Path, n_speakers: int, hop_length: int,
                 threads: Optional[int] = None, receptive_frames: Optional[int] = None):
        threads = int(threads or torch.get_num_threads())
        self.streams = threads if receptive_frames is not None else 1
        self.receptive_frames = receptive_frames
        self.text = onnx_backend.session(text_graph, threads)
        # pieces run side by side, each on its caller's thread; short utterances then run on one thread too
        self.acoustic = onnx_backend.session(acoustic_graph, 1 if self.streams > 1 else threads)
        self.n_speakers = n_speakers
        self.hop_length = hop_length
        # a deterministic duration predictor draws no noise (and its graph has no such input)
        self.stochastic_durations = "duration_noise" in {i.name for i in self.text.get_inputs()}

    def infer_one(self, ids: np.ndarray, sid: Optional[int], scales: np.ndarray) -> np.ndarray:
        """``ids (T,)`` -> float32 waveform ``(samples,)``."""
        lengths = np.array([ids.shape[0]], dtype=np.int64)
        extra: Dict[str, np.ndarray] = {} if sid is None else {"sid": np.array([sid], dtype=np.int64)}
        if self.stochastic_durations:
            extra_text = {"duration_noise": torch.randn(1, 2, ids.shape[0]).numpy(), **extra}
        else:
            extra_text = extra
        m_p, logs_p, w_ceil = self.text.run(None, {"input": ids[None].astype(np.int64), "input_lengths": lengths,
                                                   "scales": scales, **extra_text})
        frames = max(int(w_ceil.sum()), 1)
        # VITS.infer draws randn_like of its expanded prior, a transposed (1, frames, C) tensor: the draw on that
        # layout (torch fills non-contiguous tensors with another kernel than contiguous ones)
        noise = torch.empty(1, frames, m_p.shape[1]).transpose(1, 2).normal_().contiguous().numpy()
        feeds = {"m_p": m_p, "logs_p": logs_p, "w_ceil": w_ceil, "scales": scales, "noise": noise, **extra}
        starts = np.concatenate([[0], np.cumsum(w_ceil.reshape(-1).astype(np.int64))])  # first frame of phoneme i
        bounds = self._piece_bounds(starts)
        if bounds is None:
            return self._decode(feeds, 0, w_ceil.shape[-1])
        return self._decode_in_pieces(feeds, starts, bounds)

    def _decode(self, feeds: Dict[str, np.ndarray], first: int, stop: int, frame0: int = 0,
                frame1: Optional[int] = None) -> np.ndarray:
        """The acoustic graph on phonemes ``[first, stop)``, whose frames are ``[frame0, frame1)`` of the noise."""
        part = {name: feeds[name][..., first:stop] for name in ("m_p", "logs_p", "w_ceil")}
        part = {name: np.ascontiguousarray(value) for name, value in part.items()}
        noise = feeds["noise"] if frame1 is None else np.ascontiguousarray(feeds["noise"][..., frame0:frame1])
        rest = {name: value for name, value in feeds.items() if name not in part and name != "noise"}
        (wav,) = self.acoustic.run(None, {**part, **rest, "noise": noise,
                                          "input_lengths": np.array([stop - first], dtype=np.int64)})
        return wav.reshape(-1)

    def _piece_bounds(self, starts: np.ndarray) -> Optional[List[int]]:
        """Phoneme indices where the pieces' outputs meet (first 0, last the phoneme count), or None: one pass.
        ``starts[i]``: the first frame of phoneme ``i`` (one more entry: the frame count)."""
        total = int(starts[-1])
        if self.streams < 2 or total < self.MIN_PIECE_FRAMES * self.streams:
            return None
        cuts = [int(np.argmin(np.abs(starts - total * j / self.streams))) for j in range(1, self.streams)]
        bounds = [0] + cuts + [starts.size - 1]
        return bounds if all(a < b for a, b in zip(bounds, bounds[1:])) else None

    def _decode_in_pieces(self, feeds: Dict[str, np.ndarray], starts: np.ndarray, bounds: List[int]) -> np.ndarray:
        reach = int(self.receptive_frames or 0)

        def piece(j: int) -> np.ndarray:
            out0, out1 = int(starts[bounds[j]]), int(starts[bounds[j + 1]])  # the frames this piece keeps
            # context: whole phonemes covering at least `reach` frames on each side (or up to the ends)
            first = int(np.searchsorted(starts, out0 - reach, side="right")) - 1 if out0 - reach > 0 else 0
            stop = min(int(np.searchsorted(starts, out1 + reach, side="left")), bounds[-1])
            frame0, frame1 = int(starts[first]), int(starts[stop])
            wav = self._decode(feeds, first, stop, frame0, frame1)
            return wav[(out0 - frame0) * self.hop_length:(out1 - frame0) * self.hop_length]

        pending = [shared_pool(len(bounds) - 2).submit(piece, j) for j in range(1, len(bounds) - 1)]
        try:
            parts = [piece(0)]
        finally:
            parts += [job.result() for job in pending]
        return np.concatenate(parts)

    def infer(self, x: torch.Tensor, x_lengths: torch.Tensor, sid: Optional[torch.Tensor] = None,
              noise_scale: float = 1.0, length_scale: float = 1.0, noise_scale_w: float = 1.0,
              **_: object) -> Dict[str, torch.Tensor]:
        """Same arguments and ``wav (B, 1, samples)`` / ``lengths (B,)`` as :meth:`VITS.infer`."""
        scales = np.array([noise_scale, length_scale, noise_scale_w], dtype=np.float32)
        wavs = [self.infer_one(x[b, : int(x_lengths[b])].cpu().numpy(),
                               None if sid is None else int(sid.reshape(-1)[b]), scales) for b in range(x.size(0))]
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
        export_runtime(model, tmp / "text.onnx", tmp / "acoustic.onnx")

    paths = onnx_backend.ensure_graphs(folder, ("text", "acoustic"), write_all)
    return OnnxVITS(paths["text"], paths["acoustic"], model.n_speakers, model.hop_length, threads,
                    model.acoustic_receptive_frames())
