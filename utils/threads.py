"""Threads for inference: two independent pieces of work side by side, a shared worker pool, and torch's
intra-op thread count set for one block of code."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Optional, Tuple, TypeVar

import torch

__all__ = ["run_beside", "shared_pool", "side_by_side_pays", "torch_threads"]

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


@contextlib.contextmanager
def torch_threads(count: Optional[int]) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads in this thread, then restore the previous count.

    OpenMP keeps the count per calling thread, so other threads running torch work at the same time keep
    theirs. ``None`` (or the current count) changes nothing.
    """
    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_POOL_LOCK = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None
_pool_size = 0


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool for inference work split across threads, grown to at least ``workers`` threads
    (a smaller pool it replaces finishes its queued work, then its threads end)."""
    global _pool, _pool_size
    with _POOL_LOCK:
        if _pool is None or _pool_size < workers:
            old, _pool, _pool_size = _pool, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="echelon-inference"), workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool
