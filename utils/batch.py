"""How every batch CLI ends: the first failures, one summary line, one exit status (infer, vc, evaluate,
benchmark, extract_features).

::

    b: ValueError: unreadable audio file
    c: TextError: the English front end cannot read ...
    1 written, 2 failed: see out/bad_items_20261122-221500-4242.tsv

The summary line says what happened to the items (``written`` by inference, ``scored`` by evaluation,
``extracted`` by feature extraction), how many failed (their reasons: the first :data:`FAILURES_SHOWN` above it,
all of them in the bad-item list), how many were kept from an earlier run (``--skip_existing``) and, for a run
stopped by a signal, how many were not started. Exit status (:func:`exit_status`): 0 all done, 1 some failed
(0 with ``--allow_failures``), 128 + signal when stopped (130 Ctrl-C, 143 SIGTERM); 2 (a run that cannot start)
comes from ``bins/common.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

FAILURES_SHOWN = 5
EXIT_PARTIAL = 1


def add_rerun_arguments(parser: Union[argparse.ArgumentParser, argparse._ArgumentGroup], *, skip_existing: str,
                        allow_failures: str, overwrite: Optional[str] = None) -> None:
    """The options every batch CLI shares, with its own help texts: how a rerun treats earlier outputs
    (``--overwrite`` / ``--skip_existing``, exclusive; no ``--overwrite`` where ``overwrite`` is None),
    ``--quiet`` and ``--allow_failures`` (exit 0 although some items failed)."""
    rerun = parser.add_mutually_exclusive_group()
    if overwrite is not None:
        rerun.add_argument("--overwrite", action="store_true", help=overwrite)
    rerun.add_argument("--skip_existing", action="store_true", help=skip_existing)
    parser.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    parser.add_argument("--allow_failures", action="store_true", help=allow_failures)


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def failure_lines(failed: Sequence[Tuple[str, str]], shown: int = FAILURES_SHOWN) -> List[str]:
    """``id: reason`` for the first ``shown`` failures, then ``... and N more``."""
    lines = [f"{uid}: {one_line(reason)}" for uid, reason in failed[:shown]]
    if len(failed) > shown:
        lines.append(f"... and {len(failed) - shown} more")
    return lines


def summary_line(done: int, failed: int, bad_list: Optional[Path] = None, *, verb: str = "written",
                 kept: int = 0, not_started: int = 0, stopped: bool = False) -> str:
    """``N written, M failed[, K kept][: see <list>]``; stopped: ``..., K not started: rerun with --skip_existing``."""
    text = f"{done} {verb}, {failed} failed"
    if kept:
        text += f", {kept} already there (kept)"
    if stopped:
        return text + f", {not_started} not started: rerun with --skip_existing"
    return text + (f": see {bad_list}" if bad_list is not None else "")


def summary_lines(done: int, failed: Sequence[Tuple[str, str]], bad_list: Optional[Path] = None, *,
                  verb: str = "written", kept: int = 0, not_started: int = 0, stopped: bool = False) -> str:
    """The first failures, then the summary line (what a batch CLI prints last)."""
    line = summary_line(done, len(failed), bad_list, verb=verb, kept=kept, not_started=not_started,
                        stopped=stopped)
    if stopped and bad_list is not None:
        line = f"failures listed in {bad_list}\n{line}"
    return "\n".join([*failure_lines(failed), line])


def exit_status(failed: int, allow_failures: bool = False, stopped_code: Optional[int] = None) -> int:
    if stopped_code is not None:
        return stopped_code
    return EXIT_PARTIAL if failed and not allow_failures else 0
