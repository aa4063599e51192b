"""Streaming synthesis: one text as a sequence of audio chunks, the first one early.

:meth:`models.base.tasks.TextToSpeech.synthesize_stream` yields :class:`~models.base.tasks.Audio` chunks of one
text in order; concatenated, they equal ``synthesize([text])[0]`` with the same seed. A pipeline streams
sentence by sentence (``models.base.text_split.split_sentences``, the pause between sentences as its own
chunk) and, where its decoder is convolutional, decodes a long sentence's latent in windows
(:func:`windowed_decode`): each window is decoded with ``context`` latent frames on both sides, which the
decoder's receptive field must not exceed (VITS / Piper voices: 16 frames; 8 already differ by 1e-3). A convolutional stage before the decoder can run window by window too
(:meth:`LatentWindows.through`; the VITS flow: 32 frames of context give its one-shot output exactly, 16 differ
by 5e-2), so the first audio does not wait for the whole sentence's latent. Joined, the windows equal the
one-shot output to within 1e-4 (joe voice: 5e-5, the float rounding of convolutions run on other shapes).

Randomness: a stream draws from torch's process-global generator like the one-shot call does, but through
:class:`PrivateRandom`, which swaps the stream's own generator state in for each step and out again. Two
streams advanced in turns (a server interleaving requests) therefore draw exactly what each would alone, and
the caller's generator is untouched. Steps of different streams must not run at the same instant in two
threads (the generator is one per process): a server runs them one at a time, unless the pipeline draws only
from the ``torch.Generator`` each piece is handed (``concurrent_calls``, e.g. VITS on the CPU; ``serving/workers.py``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Union

import torch

from utils.rng import gpu_indices, seed_generators


class PrivateRandom:
    """One stream's torch generator states, made current only inside :meth:`active`: the CPU's, and those of the
    GPUs this process has started (a pipeline on a GPU draws its noise there)."""

    def __init__(self, seed: int):
        self.gpus = gpu_indices()
        with torch.random.fork_rng(devices=self.gpus):
            seed_generators(seed, self.gpus)
            self._save()

    def _save(self) -> None:
        self.state = torch.get_rng_state()
        self.gpu_states = [torch.cuda.get_rng_state(index) for index in self.gpus]

    @contextmanager
    def active(self) -> Iterator[None]:
        with torch.random.fork_rng(devices=self.gpus):
            torch.set_rng_state(self.state)
            for index, state in zip(self.gpus, self.gpu_states):
                torch.cuda.set_rng_state(state, index)
            try:
                yield
            finally:
                self._save()


def windowed_decode(decode: Callable[[torch.Tensor], torch.Tensor], z: Union[torch.Tensor, LatentWindows], hop: int,
                    window: int, context: int, max_window: int = 0) -> Iterator[torch.Tensor]:
    """Latent ``(1, C, T)`` -> waveform pieces ``(1, 1, n * hop)``, window by window.

    Window ``[start, stop)`` is decoded on ``z[..., start - context : stop + context]`` (clipped at the ends,
    where the one-shot decode sees the same edges) and its own ``(stop - start) * hop`` samples are kept.
    Windows start at ``window`` frames (a small first window: early first audio) and double up to
    ``max_window`` (few windows: little context recomputed; default: all of ``window`` frames).
    ``z`` may also be :class:`LatentWindows`, which computes each slice when asked (a flow run window by window).
    ``window <= 0`` or a latent no longer than one window: a single one-shot decode.
    """
    latent = z if isinstance(z, LatentWindows) else LatentWindows(z.size(-1), lambda lo, hi: z[..., lo:hi])
    frames = latent.frames
    if window <= 0 or frames <= window:
        yield decode(latent(0, frames))
        return
    if context < 0:
        raise ValueError(f"context must be >= 0 frames, got {context}")
    start, size = 0, window
    while start < frames:
        stop = min(start + size, frames)
        lo, hi = max(0, start - context), min(frames, stop + context)
        wav = decode(latent(lo, hi))
        yield wav[..., (start - lo) * hop:(stop - lo) * hop]
        start, size = stop, min(2 * size, max(window, max_window))


class LatentWindows:
    """Frames ``[lo, hi)`` of a latent of ``frames`` frames, computed on demand by ``compute(lo, hi)``."""

    def __init__(self, frames: int, compute: Callable[[int, int], torch.Tensor]):
        self.frames, self.compute = frames, compute

    def __call__(self, lo: int, hi: int) -> torch.Tensor:
        return self.compute(lo, hi)

    @classmethod
    def through(cls, fn: Callable[[int, int], torch.Tensor], frames: int, context: int) -> "LatentWindows":
        """The output of a frame-to-frame convolutional stage ``fn(a, b)`` (its input frames ``[a, b)``), each
        slice computed with ``context`` extra input frames per side (at least the stage's receptive field)."""

        def compute(lo: int, hi: int) -> torch.Tensor:
            a, b = max(0, lo - context), min(frames, hi + context)
            return fn(a, b)[..., lo - a:hi - a]

        return cls(frames, compute)
