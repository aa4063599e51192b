"""Code shape: short functions and files, so that each piece can be read (and reviewed) at once.

* at most ``MAX_LONG_FUNCTIONS`` functions (nested ones included) are over ``MAX_FUNCTION_LINES`` lines outside
  ``tests/`` and ``benchmarks/``: the numba kernels, each one compiled loop that says so in a comment;
* no ``.py`` file anywhere in the repository is over ``MAX_FILE_LINES`` lines.

A function's length is ``end_lineno - lineno + 1`` of its ``def`` (decorators not counted). Ignored folders
(virtual environments, experiments, build output, anything hidden) are skipped.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Iterator, List, Tuple

from tests.helpers import REPO_ROOT

MAX_FUNCTION_LINES = 60
MAX_LONG_FUNCTIONS = 9
MAX_FILE_LINES = 500
NOT_LIBRARY = ("tests", "benchmarks")  # top-level folders whose functions may be long (test tables, scripts)
SKIPPED_DIRS = {"__pycache__", "exp", "build", "dist", "node_modules"}  # untracked output (see .gitignore)


def python_files(root: Path = REPO_ROOT) -> Iterator[Path]:
    """Every ``.py`` file under ``root``, without hidden, ignored or build folders, in a stable order."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS
                         and not d.endswith(".egg-info"))
        yield from (Path(folder) / name for name in sorted(files) if name.endswith(".py"))


def long_functions(root: Path = REPO_ROOT) -> List[Tuple[int, str, str]]:
    """``(lines, file:line, name)`` of every function over ``MAX_FUNCTION_LINES`` lines outside tests and
    benchmarks, longest first."""
    found = []
    for path in python_files(root):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_LIBRARY:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append((lines, f"{rel.as_posix()}:{node.lineno}", node.name))
    return sorted(found, reverse=True)


def long_files(root: Path = REPO_ROOT) -> List[Tuple[int, str]]:
    """``(lines, file)`` of every ``.py`` file over ``MAX_FILE_LINES`` lines, longest first."""
    counted = ((len(p.read_text(encoding="utf-8").splitlines()), p.relative_to(root).as_posix())
               for p in python_files(root))
    return sorted(((n, rel) for n, rel in counted if n > MAX_FILE_LINES), reverse=True)


def test_few_functions_are_over_60_lines():
    found = long_functions()
    listing = "\n".join(f"  {lines} lines: {where} {name}" for lines, where, name in found)
    assert len(found) <= MAX_LONG_FUNCTIONS, (
        f"{len(found)} functions over {MAX_FUNCTION_LINES} lines outside tests/ and benchmarks/ (at most "
        f"{MAX_LONG_FUNCTIONS}): split them into named helpers\n{listing}")


def test_no_file_is_over_500_lines():
    found = long_files()
    listing = "\n".join(f"  {lines} lines: {rel}" for lines, rel in found)
    assert not found, f"{len(found)} .py file(s) over {MAX_FILE_LINES} lines: split them by concern\n{listing}"


def test_the_counters_see_nested_functions_and_skip_tests_and_ignored_folders(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))  # def + 60 lines: 61
    nested = "def outer():\n    def inner():\n" + "".join(f"        y{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    files = {"pkg/a.py": "@decorated\ndef long():\n" + body, "pkg/b.py": nested + "    return inner\n",
             "tests/test_x.py": "def long_test():\n" + body, "exp/run.py": "def long():\n" + body,
             "pkg/big.py": "x = 1\n" * (MAX_FILE_LINES + 1)}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert long_functions(tmp_path) == [(63, "pkg/b.py:1", "outer"), (61, "pkg/b.py:2", "inner"),
                                        (61, "pkg/a.py:2", "long")]
    assert long_files(tmp_path) == [(MAX_FILE_LINES + 1, "pkg/big.py")]
