"""The worker queue on its own (serving/workers.py): admission (429 with Retry-After, 503 when draining), a
client that disconnects or times out while queued frees its slot at once and its work never runs, a stream
abandoned mid-way is closed and frees its slot (and its freed heap is given back once), draining waits for the
requests in flight."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving import workers
from serving.errors import ApiError
from serving.workers import InferenceQueue


class FakeRequest:
    def __init__(self):
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


def test_admission_disconnect_timeout_and_drain():
    async def scenario():
        queue = InferenceQueue(workers=1, queue_size=1, timeout_seconds=30, retry_after_seconds=3)
        release = threading.Event()
        ran = []
        first = queue.admit()
        running = asyncio.ensure_future(first.run(lambda: release.wait(10) and ran.append("first")))
        second = queue.admit()
        with pytest.raises(ApiError) as busy:
            queue.admit()
        assert busy.value.status == 429 and busy.value.headers["Retry-After"] == "3"
        client = FakeRequest()
        waiting = asyncio.ensure_future(second.run(lambda: ran.append("second"), client))
        await asyncio.sleep(0.3)
        client.gone = True  # the queued client hangs up: its slot comes back before the running one ends
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert queue.in_flight == 1
        late = queue.admit()
        late.deadline = 0  # already past its timeout while queued behind the running request
        with pytest.raises(ApiError) as timeout:
            await late.run(lambda: ran.append("late"))
        assert timeout.value.status == 504 and queue.in_flight == 1
        drained = asyncio.ensure_future(queue.drain(10))
        await asyncio.sleep(0.2)
        with pytest.raises(ApiError) as closing:
            queue.admit()
        assert closing.value.status == 503 and not drained.done()
        release.set()
        await running
        assert await drained and queue.in_flight == 0
        assert ran == ["first"]  # the abandoned and timed-out requests never ran
        queue.close()

    asyncio.run(scenario())


@pytest.fixture
def trims(monkeypatch):
    """The heap releases requested (counted instead of done)."""
    calls = []
    monkeypatch.setattr(workers, "release_freed_memory", lambda: calls.append(threading.current_thread().name))
    return calls


def one_slot_queue() -> InferenceQueue:
    return InferenceQueue(workers=1, queue_size=0, timeout_seconds=30, retry_after_seconds=1)


def closing_stream(make_item, delay=lambda i: 0.0):
    """(a stream of 100 items, the list it appends True to when it is closed); ``delay(i)`` s before item i."""
    closed = []

    def chunks():
        try:
            for i in range(100):
                time.sleep(delay(i))
                yield make_item(i)
        finally:
            closed.append(True)

    return chunks(), closed


def test_abandoned_stream_is_closed_and_frees_its_slot(trims):
    async def scenario():
        queue = one_slot_queue()
        stream, closed = closing_stream(lambda i: i)
        slot = queue.admit()
        first, rest = await slot.first_and_rest(stream)
        assert first == 0 and await rest.__anext__() == 1
        await rest.aclose()  # the client went away after two chunks
        await asyncio.sleep(0.1)
        assert closed == [True] and queue.in_flight == 0
        assert len(trims) == 1 and trims[0].startswith("echelon-infer")  # in the pool, off the event loop
        queue.close()

    asyncio.run(scenario())


def test_stream_dropped_during_its_first_sends_frees_its_slot(trims):
    """The body is dropped after its first bytes, before the rest of the stream ever started (its own clean-up
    never runs): the endpoint's body generator still closes the stream and frees the slot."""
    from models.base.tasks import Audio
    from serving.speech import Service

    async def scenario():
        queue = one_slot_queue()
        stream, closed = closing_stream(lambda i: Audio([0.1] * 160, 16000))
        slot = queue.admit()
        first, rest = await slot.first_and_rest(stream)
        body = Service._stream_bytes(first, rest, 16000, "wav", lambda: slot.abandon(stream))
        header = await body.__anext__()
        assert header[:4] == b"RIFF" and queue.in_flight == 1
        await body.aclose()  # the client hung up after the header
        await asyncio.sleep(0.1)
        assert closed == [True] and queue.in_flight == 0
        assert len(trims) == 1  # the slot released, the heap given back: once
        queue.admit()  # the one slot is free again (a second request is refused: capacity 1)
        with pytest.raises(ApiError):
            queue.admit()
        queue.close()

    asyncio.run(scenario())


def test_stream_cancelled_while_a_chunk_is_computed_waits_for_that_step(trims):
    """The client leaves while the second chunk is being computed (the body task is cancelled): the stream is
    closed and the slot freed only when that step has ended, never from under the worker inside it."""
    from models.base.tasks import Audio
    from serving.speech import Service

    async def scenario():
        queue = one_slot_queue()
        stream, closed = closing_stream(lambda i: Audio([0.1] * 160, 16000), delay=lambda i: 0.6 if i == 1 else 0)
        slot = queue.admit()
        first, rest = await slot.first_and_rest(stream)
        body = Service._stream_bytes(first, rest, 16000, "pcm", lambda: slot.abandon(stream))

        async def consume():
            async for _ in body:
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.2)  # the second chunk's step is running in the pool
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # not "generator already executing"
            await task
        assert queue.in_flight == 1 and closed == []  # the step still runs: the slot is still taken
        await asyncio.sleep(0.8)
        assert closed == [True] and queue.in_flight == 0 and len(trims) == 1
        queue.close()

    asyncio.run(scenario())
