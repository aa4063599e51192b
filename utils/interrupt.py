"""Stop a batch job cleanly on SIGINT (Ctrl-C) or SIGTERM, or once it has spent its CPU time budget.

Batch loops (inference, evaluation, the benchmark, feature extraction, training) run inside
:class:`StopOnSignal` and check :attr:`StopOnSignal.requested` between items. The first signal only sets the
flag (and says so on stderr); the original handlers are back at once, so a second Ctrl-C interrupts
immediately (the CLIs turn that ``KeyboardInterrupt`` into one line and exit 130, see ``bins/common.py``).
The exit status of a stopped run is ``128 + signal number``: 130 for SIGINT, 143 for SIGTERM.

    with StopOnSignal() as stop:
        for item in items:
            if stop.requested:
                break
            ...
    return stop.exit_code or 0

:class:`CpuBudget` counts the CPU minutes (user + system time of all the process's threads) a job spent since
:meth:`CpuBudget.start`, on top of the minutes earlier runs of the same job recorded (a resumed training run
continues the count); :attr:`CpuBudget.reached` says when they add up to the budget. Child processes (data
loader workers) are not counted: their time is only known once they have exited.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, Dict, Optional, Sequence

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    def __init__(self, what: str = "the current item", signals: Sequence[int] = SIGNALS):
        self.what = what
        self.signals = tuple(signals)
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> Optional[int]:
        """``128 + signal`` once a signal arrived (130 SIGINT, 143 SIGTERM), else None."""
        return None if self.signum is None else 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self._restore()
        print(f"\n{signal.Signals(signum).name}: stopping after {self.what} (press Ctrl-C again to stop now)",
              file=sys.stderr, flush=True)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in self.signals:
                previous = signal.getsignal(signum)  # None: set outside Python; restored as the default
                signal.signal(signum, self._handle)
                self._previous[signum] = signal.SIG_DFL if previous is None else previous
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()


class CpuBudget:
    """``minutes`` of CPU time (None: no budget) of which ``earlier`` were spent by earlier runs."""

    def __init__(self, minutes: Optional[float], earlier: float = 0.0):
        self.minutes = minutes
        self.earlier = float(earlier)
        self._start: Optional[float] = None  # process_time() at start(); None before

    def start(self) -> None:
        self._start = time.process_time()

    def used(self) -> float:
        """CPU minutes spent so far: the earlier runs' and this one's since :meth:`start`."""
        now = 0.0 if self._start is None else time.process_time() - self._start
        return self.earlier + now / 60.0

    @property
    def reached(self) -> bool:
        return self.minutes is not None and self.used() >= self.minutes
