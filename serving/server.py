"""Running the app under uvicorn with a graceful SIGTERM: stop taking requests (503), let those in flight
finish (up to ``limits.drain_seconds``), then exit with status 0."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any, Optional

import uvicorn

from serving.workers import InferenceQueue

log = logging.getLogger("echelon.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn's server whose first SIGTERM/SIGINT drains the inference queue before shutting down; a second
    signal stops at once. uvicorn re-raises a signal it handled when it exits (status 143); a drained
    shutdown is a normal exit instead."""

    def __init__(self, config: uvicorn.Config, queue: InferenceQueue, drain_seconds: float):
        super().__init__(config)
        self.queue, self.drain_seconds = queue, drain_seconds
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._draining = False

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Optional[FrameType]) -> None:
        if self._draining or self._loop is None:
            self.force_exit = self._draining
            self.should_exit = True
            return
        self._draining = True
        self.queue.draining = True
        log.info("%s: draining %d request(s) in flight, then exiting", signal.Signals(sig).name, self.queue.in_flight)
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain_then_exit()))

    async def _drain_then_exit(self) -> None:
        finished = await self.queue.drain(self.drain_seconds)
        if not finished:
            log.warning("%d request(s) still running after %g s; exiting anyway", self.queue.in_flight,
                        self.drain_seconds)
        self.should_exit = True


def serve(app: Any, host: str, port: int, drain_seconds: float, log_level: str = "info") -> int:
    """Run until SIGTERM/SIGINT; 0 after a drained shutdown."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5,
                            lifespan="on")
    server = DrainingServer(config, app.state.service.queue, drain_seconds)
    server.run()
    return 0 if server.started else 1
