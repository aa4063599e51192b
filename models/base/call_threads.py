"""How many intra-op threads a call may use, set by whoever runs it (a server's lane) and read by runtimes that
fix their thread count in a session (onnxruntime): torch follows ``torch.set_num_threads`` of the calling
thread, onnxruntime sessions do not, so a runtime built without a fixed count asks :func:`threads_of_call`."""

from __future__ import annotations

import threading

_CALL = threading.local()


class call_threads:
    """``with call_threads(n):`` the onnxruntime sessions of a runtime that follows the caller (built with no
    fixed thread count) run this thread's calls on ``n`` intra-op threads. A server gives a call that runs alone
    all the cores and calls that run together their share; torch follows ``torch.set_num_threads`` of the
    calling thread instead."""

    def __init__(self, threads: int):
        self.threads = max(1, int(threads))

    def __enter__(self) -> "call_threads":
        self.before = getattr(_CALL, "threads", None)
        _CALL.threads = self.threads
        return self

    def __exit__(self, *_: object) -> None:
        _CALL.threads = self.before


def threads_of_call(default: int) -> int:
    """The intra-op threads :class:`call_threads` gives this thread's calls, else ``default``."""
    return getattr(_CALL, "threads", None) or default
