"""What every Echelon command line shares below ``bins/``: its argument parser, and the cheap checks a CLI makes
before any slow work (loading a model, converting a voice).

:class:`ArgumentParser` is argparse's, with two differences:

* a usage error is one line, ``PROG: MESSAGE; see PROG --help`` (exit status 2), not the usage block;
* an option that does not exist is named with the closest existing one (difflib), also when argparse would
  have complained about something else it caused (``--outt x`` leaves the required ``--out`` missing)::

      echelon-export: unrecognized option --overwite (did you mean --overwrite?); see echelon-export --help

  and a value outside an option's choices gets the closest choice the same way.
"""

from __future__ import annotations

import argparse
import difflib
import re
import socket
import sys
from typing import List, NoReturn, Optional, Sequence

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+([eE][-+]?\d+)?$")
_INVALID_CHOICE = re.compile(r"invalid choice: (?P<value>'[^']*'|\S+) \(choose from (?P<choices>.*)\)$")


def closest(name: str, candidates: Sequence[str]) -> Optional[str]:
    """The candidate most like ``name`` (difflib ratio >= 0.6), or None."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_options(argv: Sequence[str], known: Sequence[str], allow_abbrev: bool = True) -> List[str]:
    """The tokens of ``argv`` that argparse would take for options none of ``known`` matches (``--x=1`` is
    ``--x``; a unique or ambiguous prefix of a long option counts as known, as argparse resolves or names it;
    negative numbers, values with spaces and everything after ``--`` are values)."""
    found = []
    for token in argv:
        if token == "--":
            break
        if len(token) < 2 or not token.startswith("-") or " " in token or _NEGATIVE_NUMBER.match(token):
            continue
        name = token.split("=", 1)[0]
        if name in known or (not name.startswith("--") and name[:2] in known):  # -n5: short option + value
            continue
        if allow_abbrev and name.startswith("--") and any(option.startswith(name) for option in known):
            continue
        found.append(name)
    return found


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors that suggest the closest option or choice (see the module docstring)."""

    _strict_argv: Optional[List[str]] = None

    def parse_args(self, args: Optional[Sequence[str]] = None, namespace: Optional[argparse.Namespace] = None
                   ) -> argparse.Namespace:
        # Kept while parsing so that error() can name a misspelled option whatever argparse tripped on first;
        # parse_known_args alone (a first pass that leaves other options for later) never sees it.
        self._strict_argv = list(sys.argv[1:] if args is None else args)
        try:
            return super().parse_args(self._strict_argv, namespace)
        finally:
            self._strict_argv = None

    def option_strings(self, visible: bool = False) -> List[str]:
        """Every option string of the parser; ``visible``: only those ``--help`` shows."""
        return [option for action in self._actions for option in action.option_strings
                if not visible or action.help is not argparse.SUPPRESS]

    def error(self, message: str) -> NoReturn:
        if self._strict_argv is not None:
            unknown = unknown_options(self._strict_argv, self.option_strings(), self.allow_abbrev)
            if unknown:
                message = self._unrecognized(unknown)
        self.exit(2, f"{self.prog}: {_with_choice_hint(message)}; see {self.prog} --help\n")

    def _unrecognized(self, unknown: Sequence[str]) -> str:
        named = []
        for name in unknown:
            near = closest(name, self.option_strings(visible=True))
            named.append(f"{name} (did you mean {near}?)" if near else name)
        return f"unrecognized option{'s' if len(named) > 1 else ''} {', '.join(named)}"


def _with_choice_hint(message: str) -> str:
    """argparse's ``invalid choice: 'x' (choose from ...)`` with the closest choice named first."""
    match = _INVALID_CHOICE.search(message)
    if not match:
        return message
    value = match["value"].strip("'")
    choices = re.findall(r"'([^']*)'", match["choices"]) or [c.strip() for c in match["choices"].split(",")]
    near = closest(value, choices)
    if near is None:
        return message
    return f"{message[:match.start()]}invalid choice: {match['value']} (did you mean {near!r}? choose from " \
           f"{match['choices']})"


def check_port_free(host: str, port: int) -> Optional[str]:
    """Why a server could not listen on ``host:port`` (in use, an address not of this machine), found by binding
    a socket the way uvicorn does (``SO_REUSEADDR``) and letting it go; None when it could."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as err:
        return f"{host}: {err.strerror}"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            return f"{host}:{port}: {err.strerror or err}"
    return None
