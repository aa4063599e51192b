"""Inference off the event loop: a bounded worker pool, a bounded queue, timeouts, disconnects, draining.

* A request is admitted (a *slot*) or refused at once: 429 with Retry-After when ``workers + queue_size``
  requests are already in progress or waiting, 503 once the server drains for shutdown.
* Its work runs in the pool's threads as *steps* (one whole call, or one chunk of a stream). Every step holds
  one model lock: on a CPU one call already uses all cores through torch's threads, and some pipelines seed
  torch's process-global generator (VITS: ``models/base/streaming.py``), so two steps at the same instant
  would draw each other's noise. ``workers`` > 1 therefore overlaps only what happens outside steps.
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
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from starlette.requests import Request

from serving.errors import ApiError
from utils.memory import release_freed_memory

log = logging.getLogger("echelon.serve")
_END = object()
POLL_SECONDS = 0.1  # how often a waiting request checks for its client's disconnect


class InferenceQueue:
    def __init__(self, workers: int, queue_size: int, timeout_seconds: float, retry_after_seconds: int):
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="echelon-infer")
        self.capacity = workers + queue_size
        self.timeout_seconds = timeout_seconds
        self.retry_after_seconds = retry_after_seconds
        self.model_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.in_flight = 0
        self.draining = False
        self.completed = 0

    # ------------------------------------------------------------------ admission
    def admit(self) -> "Slot":
        if self.draining:
            raise ApiError(503, "the server is shutting down and takes no new requests")
        with self._count_lock:
            if self.in_flight >= self.capacity:
                raise ApiError(429, f"the server is busy ({self.in_flight} requests running or queued, limit "
                                    f"{self.capacity}); retry later",
                               headers={"Retry-After": str(self.retry_after_seconds)})
            self.in_flight += 1
        return Slot(self)

    def _release(self) -> None:
        with self._count_lock:
            self.in_flight -= 1
            self.completed += 1

    def _step(self, fn: Callable[[], Any]) -> Any:
        with self.model_lock:
            return fn()

    def release_freed_memory(self) -> None:
        """Give the heap the finished stream freed back to the OS, in the pool (10-25 ms, off the event loop).

        Streams run the torch path (VITS: the windows of a long sentence) whose buffers glibc keeps in the
        worker thread's heap once freed: without this, the first long stream leaves the process ~150-200 MB
        larger for good (joe voice, a 295-character sentence); trimming after each costs its first chunk of the
        next stream ~0.02 s of CPU (pages faulted in again) and the whole stream ~1 %."""
        try:
            self.executor.submit(release_freed_memory)
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
        self.executor.shutdown(wait=False, cancel_futures=True)


class Slot:
    """One admitted request's place in the pool; released exactly once, when its last step has ended."""

    def __init__(self, queue: InferenceQueue):
        self.queue = queue
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
        self._running = self.queue.executor.submit(self.queue._step, fn)
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
                    self.queue.release_freed_memory()

        if running is not None and not running.done():
            running.cancel()
            running.add_done_callback(finish)
        else:
            finish()
