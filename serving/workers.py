"""Inference off the event loop: one bounded pool per served model, a bounded queue, timeouts, disconnects,
draining.

* A request is admitted (a *slot*) or refused at once: 429 with Retry-After when ``capacity`` (the models' step
  threads + ``queue_size``) requests are already in progress or waiting, 503 once the server drains for shutdown.
* Its work runs as *steps* (one whole call, or one chunk of a stream) in its model's own pool (a *lane*): the
  models never wait for each other (a slow voice conversion does not hold up TTS), and up to ``size`` steps of
  one model run at once. A lane of size > 1 is only given to a pipeline whose calls may run in several threads
  (``concurrent_calls``: its noise comes from each call's own ``torch.Generator``, never torch's process-global
  one, so two calls cannot draw each other's noise and the audio stays that of the text and seed alone); the
  others get one thread. Each thread of a lane of size n runs torch on 1/n of torch's threads (at least 1), so
  n steps together do not oversubscribe the cores. onnxruntime sessions that follow the caller
  (``models.base.call_threads``) get all the threads for a step that starts while no other step of
  its model runs, and 1/n of them otherwise: a lone request uses both cores of a 2-core machine (the joe voice,
  idle machine: 5.5 texts/s against 4.2 on one thread), two together one core each.
* The slot is given back when the request's last step has ended: a client that disconnects or times out
  while waiting frees it at once (its step is cancelled before it starts); one whose step is running frees it
  when that step returns (a thread cannot be stopped mid-computation), and a stream stops after its current
  chunk.
* When a stream ends, the heap it freed is given back to the OS (:meth:`InferenceQueue.release_freed_memory`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Mapping, Optional

from starlette.requests import Request

from models.base.call_threads import call_threads
from serving.errors import ApiError
from utils.memory import release_freed_memory

log = logging.getLogger("echelon.serve")
_END = object()
POLL_SECONDS = 0.1  # how often a waiting request checks for its client's disconnect


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def torch_threads() -> int:
    """Torch's intra-op threads as this process starts them (``OMP_NUM_THREADS``, else the cores)."""
    import torch

    return torch.get_num_threads()


def _set_torch_threads(threads: int) -> None:
    """A lane thread's start: torch's intra-op threads of this thread (OpenMP's count is per thread; a thread
    started later takes the last count set, so every lane sets its own)."""
    import torch

    torch.set_num_threads(threads)


class InferenceQueue:
    """``workers``: steps of one model that may run at once (its lane's threads), unless ``lanes`` gives a
    model its own size; ``queue_size``: requests admitted beyond those."""

    def __init__(self, workers: int, queue_size: int, timeout_seconds: float, retry_after_seconds: int,
                 lanes: Optional[Mapping[str, int]] = None):
        self.workers = max(1, int(workers))
        self.lane_sizes: Dict[str, int] = {name: max(1, int(n)) for name, n in (lanes or {}).items()}
        self.threads = torch_threads()  # shared by the steps of a lane: threads // size each (at least 1)
        self._lanes: Dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self._lanes_lock = threading.Lock()
        self._steps_running: Dict[str, int] = {}  # steps of each model running now
        self.capacity = (sum(self.lane_sizes.values()) or self.workers) + queue_size
        self.timeout_seconds = timeout_seconds
        self.retry_after_seconds = retry_after_seconds
        self._count_lock = threading.Lock()
        self.in_flight = 0
        self.draining = False
        self.completed = 0

    def lane(self, model: str = "") -> concurrent.futures.ThreadPoolExecutor:
        """The pool of ``model``'s steps (made on first use)."""
        with self._lanes_lock:
            pool = self._lanes.get(model)
            if pool is None:
                size = self.lane_sizes.get(model, self.workers)
                pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=size, thread_name_prefix=f"echelon-infer-{model}" if model else "echelon-infer",
                    initializer=_set_torch_threads, initargs=(max(1, self.threads // size),))
                self._lanes[model] = pool
            return pool

    def step(self, model: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` as a step of ``model``'s lane: its onnxruntime sessions get all the threads when it starts with
        no other step of the model running, else the lane's share."""
        size = self.lane_sizes.get(model, self.workers)

        def run() -> Any:
            with self._count_lock:
                running = self._steps_running.get(model, 0) + 1
                self._steps_running[model] = running
            try:
                with call_threads(self.threads if running == 1 else max(1, self.threads // size)):
                    return fn()
            finally:
                with self._count_lock:
                    self._steps_running[model] -= 1

        return run

    # ------------------------------------------------------------------ admission
    def admit(self, model: str = "") -> "Slot":
        """A slot for a request to ``model`` (its steps run in that model's lane)."""
        if self.draining:
            raise ApiError(503, "the server is shutting down and takes no new requests")
        with self._count_lock:
            if self.in_flight >= self.capacity:
                raise ApiError(429, f"the server is busy ({self.in_flight} requests running or queued, limit "
                                    f"{self.capacity}); retry later",
                               headers={"Retry-After": str(self.retry_after_seconds)})
            self.in_flight += 1
        return Slot(self, model)

    def _release(self) -> None:
        with self._count_lock:
            self.in_flight -= 1
            self.completed += 1

    def release_freed_memory(self, model: str = "") -> None:
        """Give the heap the finished stream freed back to the OS, in the pool (10-25 ms, off the event loop).

        Streams run the torch path (VITS: the windows of a long sentence) whose buffers glibc keeps in the
        worker thread's heap once freed: without this, the first long stream leaves the process ~150-200 MB
        larger for good (joe voice, a 295-character sentence); trimming after each costs its first chunk of the
        next stream ~0.02 s of CPU (pages faulted in again) and the whole stream ~1 %."""
        try:
            self.lane(model).submit(release_freed_memory)
        except RuntimeError:  # the pool is shut down: the process is exiting
            pass

    # ------------------------------------------------------------------ shutdown
    async def drain(self, seconds: float) -> bool:
        """Refuse new requests, wait up to ``seconds`` for those in flight; True when none is left."""
        self.draining = True
        deadline = time.monotonic() + seconds
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
        return self.in_flight == 0

    def close(self) -> None:
        with self._lanes_lock:
            lanes = list(self._lanes.values())
        for pool in lanes:
            pool.shutdown(wait=False, cancel_futures=True)


class Slot:
    """One admitted request's place in the pool; released exactly once, when its last step has ended."""

    def __init__(self, queue: InferenceQueue, model: str = ""):
        self.queue, self.model = queue, model
        self.deadline = time.monotonic() + queue.timeout_seconds
        self._released = False
        self._lock = threading.Lock()
        self._running: Optional[concurrent.futures.Future] = None  # the stream step now in the pool, if any

    def release(self) -> bool:
        """Give the slot back; True the first time (later calls do nothing)."""
        with self._lock:
            if self._released:
                return False
            self._released = True
        self.queue._release()
        return True

    def _submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        self._running = self.queue.lane(self.model).submit(self.queue.step(self.model, fn))
        return self._running

    async def _wait(self, future: concurrent.futures.Future, request: Optional[Request]) -> Any:
        """The step's result; on timeout (504) or disconnect the step is cancelled if it has not started."""
        wrapped = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({wrapped}, timeout=POLL_SECONDS)
            if done:
                return wrapped.result()
            gone = request is not None and await request.is_disconnected()
            if gone or time.monotonic() > self.deadline:
                future.cancel()
                if gone:
                    raise asyncio.CancelledError("client disconnected")
                raise ApiError(504, f"the request did not finish within {self.queue.timeout_seconds:g} s")

    async def run(self, fn: Callable[[], Any], request: Optional[Request] = None) -> Any:
        """Run ``fn`` as one step; the slot is released when it ends (or is cancelled before starting)."""
        future = self._submit(fn)
        future.add_done_callback(lambda _: self.release())
        return await self._wait(future, request)

    async def first_and_rest(self, chunks: Iterator[Any], request: Optional[Request] = None) -> tuple:
        """Compute a stream's first item now (its errors can still be a status) -> (first, async rest)."""
        future = self._submit(lambda: next(chunks, _END))
        try:
            first = await self._wait(future, request)
        except BaseException:
            self._finish_later(future, chunks)
            raise
        if first is _END:
            self._finish_later(None, chunks)
            raise ApiError(400, "the input produced no audio", "input")
        return first, self._rest(chunks)

    def abandon(self, chunks: Iterator[Any]) -> None:
        """The stream's consumer is gone (e.g. the client left while the first chunk was being sent, before
        :meth:`_rest` ever ran, so its ``finally`` never will): close the stream and release the slot, once the
        step now running (if any) has ended: a generator cannot be closed while a worker is inside it. Safe to
        call after a normal end too (the slot is released once)."""
        self._finish_later(self._running, chunks)

    async def _rest(self, chunks: Iterator[Any]) -> AsyncIterator[Any]:
        future: Optional[concurrent.futures.Future] = None
        try:
            while True:
                if time.monotonic() > self.deadline:  # headers are sent: the stream ends early, said in the log
                    log.warning("a stream ran past its %g s timeout and was cut", self.queue.timeout_seconds)
                    return
                future = self._submit(lambda: next(chunks, _END))
                item = await asyncio.wrap_future(future)
                future = None
                if item is _END:
                    return
                yield item
        finally:
            self._finish_later(future, chunks)

    def _finish_later(self, running: Optional[concurrent.futures.Future], chunks: Iterator[Any]) -> None:
        """Close the stream and release the slot once no step of it runs any more."""

        def finish(_: Any = None) -> None:
            close = getattr(chunks, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                if self.release():
                    self.queue.release_freed_memory(self.model)

        if running is not None and not running.done():
            running.cancel()
            running.add_done_callback(finish)
        else:
            finish()
