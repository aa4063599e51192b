"""Running two independent pieces of inference work side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Tuple, TypeVar

import torch

__all__ = ["run_beside", "side_by_side_pays"]

A = TypeVar("A")
B = TypeVar("B")


def side_by_side_pays(device: torch.device | str = "cpu") -> bool:
    """Whether a CPU-bound side task should overlap torch work: torch runs on an accelerator, or it may use
    two or more CPU threads (with one, the two would only take turns on the same core)."""
    return torch.device(device).type != "cpu" or torch.get_num_threads() >= 2


def run_beside(side: Callable[[], A], main: Callable[[], B], parallel: bool = True) -> Tuple[A, B]:
    """``(side(), main())``; with ``parallel``, ``side`` runs in a worker thread while ``main`` runs here.

    Meant for work that releases the GIL (numba ``nogil`` kernels, numpy, torch ops): YAAPT F0 beside the SSL
    encoder. Either's exception is raised here once both have finished.
    """
    if not parallel:
        return side(), main()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside") as pool:
        future = pool.submit(side)
        result = main()  # should it raise, leaving the block still waits for ``side``
        return future.result(), result
