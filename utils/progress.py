"""Progress of long jobs, the one reporter every Echelon CLI uses (train, infer, evaluate, benchmark, features).

On a terminal it is a tqdm bar. Anywhere else (a log file, CI, a pipe) a bar would be one unreadable line
updated in place, so the reporter prints plain lines instead: one when the work starts, then one at least
every ``interval`` seconds (30 by default; ``ECHELON_PROGRESS_INTERVAL`` overrides it) from a background
timer, also while one long item is still running::

    infer: 12/40 items (30%), 0.41 items/s, ETA 1m08s, failed=1; tts_0012: piece 3/9

``quiet=True`` (the CLIs' ``--quiet``) shows nothing. Code deep inside an item (a TTS pipeline speaking
sentence after sentence, SpeechSR working through windows) reports how far that item is with
:func:`report_piece`, without being handed the reporter: the innermost open reporter receives it.

    with Progress(len(items), "infer", unit="items", quiet=args.quiet) as progress:
        for item in items:
            progress.start_item(item.id)
            ...                                   # may call report_piece(done, total)
            progress.update(1, failed=len(failed))
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, List, Optional, TextIO

from utils.wording import plural

DEFAULT_INTERVAL = 30.0
_ACTIVE: List["Progress"] = []  # open reporters, innermost last (report_piece goes to the innermost)


def progress_interval() -> float:
    """Seconds between plain progress lines: ``ECHELON_PROGRESS_INTERVAL`` or 30."""
    try:
        return max(0.05, float(os.environ.get("ECHELON_PROGRESS_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``4000`` -> ``1h06m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A tqdm bar on a terminal, timed plain lines elsewhere, nothing when ``quiet``."""

    def __init__(self, total: Optional[int], desc: str, unit: str = "items", *, initial: int = 0,
                 quiet: bool = False, interval: Optional[float] = None, stream: Optional[TextIO] = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.done = initial
        self._initial = initial
        self.postfix: dict = {}
        self.item: Optional[str] = None
        self.piece: Optional[str] = None
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._start = time.monotonic()
        self._bar = None
        self._timer: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        if quiet:
            return
        if _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit.rstrip("s") or unit,
                             file=self.stream, dynamic_ncols=True)
        else:
            self.interval = progress_interval() if interval is None else interval
            kept = f" ({initial} already done)" if initial else ""
            todo = plural(total - initial, unit.rstrip("s") or unit, unit) if total is not None else ""
            self._print(f"{desc}: {todo} to do{kept}" if total is not None else f"{desc}: started")
            self._timer = threading.Thread(target=self._tick, name=f"progress-{desc}", daemon=True)
            self._timer.start()

    # ------------------------------------------------------------------ what callers report
    def start_item(self, name: str) -> None:
        """The item now being worked on (shown with its pieces in plain lines)."""
        with self._lock:
            self.item, self.piece = name, None

    def set_piece(self, done: int, total: int, unit: str = "piece") -> None:
        with self._lock:
            self.piece = f"{unit} {done}/{total}"
        if self._bar is not None:
            self._bar.set_postfix({**self.postfix, (self.item or "item"): self.piece}, refresh=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        with self._lock:
            self.done += n
            self.piece = None
            self.postfix.update({k: _short(v) for k, v in postfix.items()})
        if self._bar is not None:
            self._bar.update(n)
            if self.postfix:
                self._bar.set_postfix(self.postfix, refresh=False)

    # ------------------------------------------------------------------ plain lines
    def line(self) -> str:
        """The plain progress line (also what the timer prints)."""
        with self._lock:
            elapsed = time.monotonic() - self._start
            done, total = self.done, self.total
            rate = (done - self._initial) / elapsed if elapsed > 0 else 0.0
            parts = [f"{done}/{total} {self.unit}" if total else f"{done} {self.unit}"]
            if total:
                parts[0] += f" ({100 * done / max(total, 1):.0f}%)"
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 0.01 else f"{format_duration(elapsed)} elapsed")
            if total and rate > 0 and done < total:
                parts.append(f"ETA {format_duration((total - done) / rate)}")
            parts += [f"{k}={v}" for k, v in self.postfix.items()]
            text = f"{self.desc}: " + ", ".join(parts)
            if self.item is not None and done < (total or done + 1):
                text += f"; {self.item}" + (f": {self.piece}" if self.piece else " running")
        return text

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._print(self.line())

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # the stream was closed under us (a pipe reader went away)
            self._stop.set()

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=1.0)
            self._timer = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def __enter__(self) -> "Progress":
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def report_piece(done: int, total: int, unit: str = "piece") -> None:
    """How far the current item is (``done`` of ``total`` pieces); a no-op when no reporter is open."""
    if _ACTIVE:
        _ACTIVE[-1].set_piece(done, total, unit)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
