"""Threads for inference: two independent pieces of work side by side (the side worker helping the main
work once its own task is done), a shared worker pool, and torch's intra-op thread count set for one block
of code."""

from __future__ import annotations

import contextlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import torch

__all__ = ["map_with_side_worker", "run_beside", "shared_pool", "side_by_side_pays", "torch_threads"]

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
        previous = getattr(_SIDE_WORKER, "pool", None)
        _SIDE_WORKER.pool = pool  # for map_with_side_worker() calls inside main()
        try:
            result = main()  # should it raise, leaving the block still waits for ``side``
        finally:
            _SIDE_WORKER.pool = previous
        return future.result(), result


_SIDE_WORKER = threading.local()  # .pool: the run_beside worker of the main() running in this thread


def map_with_side_worker(function: Callable[[A], B], items: Sequence[A]) -> List[B]:
    """``[function(item) for item in items]``, where inside ``run_beside``'s ``main`` the side worker joins in
    as soon as its own task is done (items are taken in order by whichever thread is free; results keep it).

    For independent pieces of CPU work of ~0.1 s each: the side task and the main work then share the cores
    instead of one core idling once the shorter of the two ends. The side worker runs its items on one
    torch thread in the caller's autograd mode, the caller its own with its settings; outside
    ``run_beside`` this is a plain loop.
    """
    pool = getattr(_SIDE_WORKER, "pool", None)
    if pool is None or len(items) < 2:
        return [function(item) for item in items]
    results: List[Optional[B]] = [None] * len(items)
    order, lock, failed = itertools.count(), threading.Lock(), threading.Event()
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def drain() -> None:
        while not failed.is_set():  # after an error in either thread, neither starts another item
            with lock:
                index = next(order)
            if index >= len(items):
                return
            try:
                results[index] = function(items[index])
            except BaseException:
                failed.set()
                raise

    def help_out() -> None:  # the side worker was one thread's work, and stays that
        with torch.inference_mode(inference), torch.set_grad_enabled(grad), torch_threads(1):
            drain()

    helper = pool.submit(help_out)  # queued behind the side task: it starts when that one is done
    try:
        drain()
    finally:  # a helper that has not started never will; one that has is waited for
        helper_error = None if helper.cancel() else helper.exception()
    if helper_error is not None:  # raised only when this thread's own items went through
        raise helper_error
    return results  # type: ignore[return-value]


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
