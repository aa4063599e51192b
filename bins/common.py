"""What every Echelon CLI shares: known errors become one line (``prog: message``, exit 2), bugs stay loud.

Exit status of every CLI: 0 all done; 1 some items failed (listed; ``--allow_failures``: 0); 2 the run could
not start (bad option, input, device, output path: one line); 130/143 stopped by SIGINT/SIGTERM (the batch
CLIs finish the current item and print what is left: ``rerun with --skip_existing``).

A *known* error is one of the project's own exception classes (``ConfigError``, ``CheckpointError``,
``AudioError``, ``ManifestError``, ``InferenceError``, ...: any exception class defined in Echelon's packages)
or a file-system error (missing or unreadable file, unwritable folder). Anything else — a ``TypeError`` or an
``IndexError`` from a genuine bug — keeps its traceback. ``--debug`` (or ``ECHELON_DEBUG=1``) shows the
traceback of known errors too.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, List, Optional

PROJECT_PACKAGES = ("bins.", "models.", "modules.", "processors.", "utils.", "evaluation.", "serving.", "finetune.")
FILE_SYSTEM_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
DEBUG_FLAG = "--debug"


def is_known_error(err: BaseException) -> bool:
    if isinstance(err, FILE_SYSTEM_ERRORS):
        return True
    return any(cls.__module__.startswith(PROJECT_PACKAGES) for cls in type(err).__mro__)


def one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return " ".join(text.split())


def run_cli(prog: str, main: Callable[[List[str]], int], argv: Optional[List[str]] = None) -> int:
    """Call ``main(argv)``; a known error prints ``prog: message`` to stderr and returns 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("ECHELON_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        return main(argv)
    except KeyboardInterrupt:
        # A second Ctrl-C (the first one lets a batch finish its current item, utils/interrupt.py), or one
        # before the batch loop started: nothing half-written is kept (outputs are atomic).
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``echelon-infer --help | head``): not an error of ours; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 - re-raised unless it is one of ours (see is_known_error)
        if debug or not is_known_error(err):
            raise
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        return 2
