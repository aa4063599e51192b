"""Streaming synthesis: one text as a sequence of audio chunks, the first one early.

:meth:`models.base.tasks.TextToSpeech.synthesize_stream` yields :class:`~models.base.tasks.Audio` chunks of one
text in order; concatenated, they equal ``synthesize([text])[0]`` with the same seed. A pipeline streams
sentence by sentence (``models.base.text_split.split_sentences``, the pause between sentences as its own
chunk) and, where its decoder is convolutional, decodes a long sentence's latent in windows
(:func:`windowed_decode`): each window is decoded with ``context`` latent frames on both sides, which the
decoder's receptive field must not exceed (VITS / Piper voices: 16 frames give the one-shot samples to within
1e-6; 8 frames already differ by 1e-3).

Randomness: a stream draws from torch's process-global generator like the one-shot call does, but through
:func:`with_private_rng`, which swaps the stream's own generator state in for each step and out again. Two
streams advanced in turns (a server interleaving requests) therefore draw exactly what each would alone, and
the caller's generator is untouched. Steps of different streams must not run at the same instant in two
threads (the generator is one per process): a server runs them one at a time.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import torch

T = TypeVar("T")


class PrivateRandom:
    """A torch CPU generator state of one stream, made current only inside :meth:`active`."""

    def __init__(self, seed: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.state = torch.get_rng_state()

    @contextmanager
    def active(self) -> Iterator[None]:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.state)
            try:
                yield
            finally:
                self.state = torch.get_rng_state()


def with_private_rng(steps: Iterator[T], seed: int) -> Iterator[T]:
    """Advance ``steps`` (a generator that draws from torch's global generator) with its own seeded state."""
    rng = PrivateRandom(seed)
    while True:
        with rng.active():
            try:
                item = next(steps)
            except StopIteration:
                return
        yield item


def windowed_decode(decode: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, hop: int, window: int,
                    context: int) -> Iterator[torch.Tensor]:
    """Latent ``(1, C, T)`` -> waveform pieces ``(1, 1, n * hop)``, window by window.

    Window ``[start, stop)`` is decoded on ``z[..., start - context : stop + context]`` (clipped at the ends,
    where the one-shot decode sees the same edges) and its own ``(stop - start) * hop`` samples are kept.
    ``window <= 0`` or a latent no longer than one window: a single one-shot decode.
    """
    frames = z.size(-1)
    if window <= 0 or frames <= window:
        yield decode(z)
        return
    if context < 0:
        raise ValueError(f"context must be >= 0 frames, got {context}")
    for start in range(0, frames, window):
        stop = min(start + window, frames)
        lo, hi = max(0, start - context), min(frames, stop + context)
        wav = decode(z[..., lo:hi])
        yield wav[..., (start - lo) * hop:(stop - lo) * hop]
