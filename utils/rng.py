"""Seeded blocks that touch only the random generators they mean to.

``torch.manual_seed`` reseeds the CPU generator *and every GPU's*, while ``torch.random.fork_rng(devices=[])``
gives back only the CPU's. Blocks written that way (to build a randomly initialised helper model, say) reset a
GPU training run's generator to the helper's seed: a resumed HierSpeech++ run then drew other noise than the
uninterrupted one (tests/cuda/test_cuda_paths.py, found on an H200). Here a block seeds and gives back the CPU
generator, plus a GPU's only when it says it draws there.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional, Union

import torch

Device = Union[str, torch.device, None]


def gpu_indices(device: Device = None) -> List[int]:
    """The GPU generators a block on ``device`` draws from: that GPU's for a CUDA device, none for any other.
    With no device: every GPU this process has already started (CUDA is never started here)."""
    if device is None:
        return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [torch.cuda.current_device() if device.index is None else device.index]


def seed_generators(seed: int, gpus: List[int]) -> None:
    """Seed torch's CPU generator and those of ``gpus`` (no other GPU's)."""
    torch.random.default_generator.manual_seed(int(seed))
    for index in gpus:
        torch.cuda.default_generators[index].manual_seed(int(seed))


@contextmanager
def seeded(seed: Optional[int] = None, device: Device = "cpu") -> Iterator[None]:
    """Run the block with torch's CPU generator (and ``device``'s, when that is a GPU) seeded with ``seed``;
    their states come back afterwards, and no other generator is touched. ``seed=None``: only set them aside."""
    gpus = gpu_indices(device)
    with torch.random.fork_rng(devices=gpus):
        if seed is not None:
            seed_generators(seed, gpus)
        yield
