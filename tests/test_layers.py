"""The layer rule, checked on the source of every package (imports inside functions included):

* ``modules/`` imports neither ``processors/`` nor ``models/``;
* ``processors/`` and ``utils/`` do not import ``models/`` (and ``utils/`` none of the three packages);
* a model package (``models/<group>/<name>/``) imports no other model package; shared code comes from
  ``models/base`` and other models are reached through the registry (``utils.registry.get``);
* library code (``models/ modules/ processors/ evaluation/ utils/ serving/``) never imports ``bins/`` (the CLIs
  sit on top of it, not the other way round);
* ``serving/`` (the HTTP server, above ``models/``) is imported by none of them and imports no ``bins/`` and no
  model package: it drives models through ``models.base`` (pipelines, task API) only;
* inside one folder the imports go one way: no two modules of a folder (its ``.py`` files and sub-packages)
  import each other, directly or round a longer loop, not even from inside a function.

Each finding is reported as ``file:line`` with the offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

from tests.helpers import REPO_ROOT

# Known model -> model imports still to be removed, as (file, imported package): none left.
KNOWN_MODEL_CROSS_IMPORTS = frozenset()  # empty: models share code through models/base and the registry

FORBIDDEN = {
    "modules": ("processors", "models", "bins", "serving"),
    "processors": ("models", "bins", "serving"),
    "utils": ("models", "processors", "modules", "bins", "serving"),
    "models": ("bins", "serving"),
    "evaluation": ("bins", "serving"),
    "serving": ("bins",),
    "finetune": ("bins", "serving"),
}


def _module_name(path: Path, root: Path = REPO_ROOT) -> str:
    """``models/tts/vits/model.py`` -> ``models.tts.vits.model``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Absolute names imported by an ``import``/``from`` node of ``module`` (relative imports resolved)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parts = module.split(".")
            base = parts if is_package else parts[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        if node.module:
            yield prefix
        else:  # ``from . import x``: each name may be a submodule
            for alias in node.names:
                yield f"{prefix}.{alias.name}"


def model_package(name: str) -> Optional[str]:
    """``models.tts.vits.model`` -> ``models.tts.vits``; ``models.base...`` and group packages -> None."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "models" or parts[1] == "base":
        return None
    return ".".join(parts[:3])


def _is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def findings() -> List[Tuple[str, int, str, str]]:
    """(file, line, imported module, rule) for every forbidden import in the repository."""
    found = []
    for top in FORBIDDEN:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):  # a package not (yet) in the tree has no files
            module = _module_name(path)
            own_model = model_package(module)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                for name in _imported(node, module, path.name == "__init__.py"):
                    rel = path.relative_to(REPO_ROOT).as_posix()
                    for banned in FORBIDDEN.get(top, ()):
                        if _is_within(name, banned):
                            found.append((rel, node.lineno, name, f"{top}/ must not import {banned}/"))
                    other = model_package(name)
                    if top == "serving" and other:
                        found.append((rel, node.lineno, name, "serving/ must reach models through models.base"))
                    if own_model and other and other != own_model:
                        found.append((rel, node.lineno, name, f"{own_model} must not import another model ({other})"))
    return found


def _allowed(finding: Tuple[str, int, str, str]) -> bool:
    rel, _, name, _ = finding
    return any(rel == f and _is_within(name, prefix) for f, prefix in KNOWN_MODEL_CROSS_IMPORTS)


def test_no_import_crosses_a_layer():
    bad = [f for f in findings() if not _allowed(f)]
    report = "\n".join(f"{rel}:{line}: imports {name} ({rule})" for rel, line, name, rule in bad)
    assert not bad, f"{len(bad)} forbidden import(s):\n{report}"


def test_library_code_never_imports_the_clis():
    """The rule reaches every library package, and a ``bins`` import in one of them would be a finding."""
    assert {"models", "modules", "processors", "evaluation", "utils", "serving"} <= {
        top for top, banned in FORBIDDEN.items() if "bins" in banned}
    tree = ast.parse("def run():\n    from bins.evaluate import evaluate\n")
    assert [n for node in ast.walk(tree) for n in _imported(node, "evaluation.benchmark.runner", False)] == [
        "bins.evaluate"]


def test_allow_list_only_holds_live_findings():
    """An allow-list entry whose import is gone must be deleted, so the list only ever shrinks."""
    live = {(rel, name) for rel, _, name, _ in findings()}
    stale = [(f, p) for f, p in KNOWN_MODEL_CROSS_IMPORTS if not any(r == f and _is_within(n, p) for r, n in live)]
    assert not stale, f"allow-list entries no longer needed (delete them): {stale}"


def test_the_checker_sees_relative_function_level_and_cross_model_imports(tmp_path):
    """The rule itself on known snippets: a relative import resolves to its package, imports inside a function
    count, and ``models.ttv.x`` importing ``models.tts.y`` is a cross-model import while ``models.base`` is not."""
    source = "def f():\n    from ..hierspeechpp import model\nfrom models.base import trainer\nimport models.tts.vits.model\n"
    tree = ast.parse(source)
    names = [n for node in ast.walk(tree) for n in _imported(node, "models.tts.vits.dataset", False)]
    assert sorted(names) == ["models.base", "models.tts.hierspeechpp", "models.tts.vits.model"]
    assert model_package("models.tts.hierspeechpp") == "models.tts.hierspeechpp"
    assert model_package("models.base.trainer") is None and model_package("models.tts") is None
    from_init = [n for node in ast.walk(ast.parse("from . import dataset\n")) for n in _imported(node, "models.tts.vits", True)]
    assert from_init == ["models.tts.vits.dataset"]


# Every library package: the layers above plus the CLIs, which may import the rest but not in circles.
LIBRARY_PACKAGES = ("models", "modules", "processors", "evaluation", "utils", "serving", "finetune", "bins")

ImportGraph = Dict[str, Dict[str, int]]  # module -> {module of the same folder it imports: first line}


def _folder(module: str) -> str:
    """The folder a module sits in (a package counts as a module of its parent folder, as its ``__init__`` is)."""
    return module.rpartition(".")[0]


def _targets(node: ast.AST, module: str, is_package: bool, modules: Set[str]) -> Iterator[str]:
    """The modules of ``modules`` an import node reaches: ``from pkg import sub`` reaches ``pkg.sub`` when that
    is a module, and ``pkg.sub.name`` the longest prefix that is one."""
    names = list(_imported(node, module, is_package))
    if isinstance(node, ast.ImportFrom) and node.module:
        names += [f"{names[0]}.{alias.name}" for alias in node.names]
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            yield name


def same_folder_imports(root: Path = REPO_ROOT, tops: Tuple[str, ...] = LIBRARY_PACKAGES) -> ImportGraph:
    """Each module under ``root/<top>/`` -> the modules of its own folder it imports (function level included)."""
    paths = {_module_name(path, root): path for top in tops for path in sorted((root / top).rglob("*.py"))}
    graph: ImportGraph = {module: {} for module in paths}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _targets(node, module, path.name == "__init__.py", set(paths)):
                if _folder(target) == _folder(module):
                    graph[module].setdefault(target, node.lineno)
    return graph


def _reachable(graph: ImportGraph, start: str) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def import_cycles(graph: ImportGraph) -> List[List[str]]:
    """The strongly connected components of more than one module (sorted): modules that import each other."""
    reach = {module: _reachable(graph, module) for module in graph if graph[module]}
    cycles = {tuple(sorted(m for m in reach[module] if module in reach.get(m, ()))) for module in reach}
    return sorted(list(c) for c in cycles if len(c) > 1)


def _describe(cycle: List[str], graph: ImportGraph) -> str:
    edges = [f"{m} -> {t} (line {line})" for m in cycle for t, line in sorted(graph[m].items()) if t in cycle]
    return f"{' <-> '.join(cycle)}:\n    " + "\n    ".join(edges)


def test_no_folder_has_an_import_cycle():
    graph = same_folder_imports()
    cycles = import_cycles(graph)
    report = "\n".join(_describe(cycle, graph) for cycle in cycles)
    assert not cycles, (f"{len(cycles)} import cycle(s) inside a folder (move what both sides need into the lower "
                        f"module or a small new one, so the imports go one way):\n{report}")


def test_the_cycle_finder_sees_function_level_and_from_package_imports(tmp_path):
    """A loop closed by an import inside a function and by ``from pkg import module`` is a cycle; a one-way chain
    and an import of another folder's module are not (a sub-package is a module of its parent's folder)."""
    files = {"pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n", "pkg/b.py": "def f():\n    from . import c\n",
             "pkg/c.py": "import pkg.a\n", "pkg/d.py": "from pkg.a import thing\nfrom pkg.sub import e\n",
             "pkg/sub/__init__.py": "", "pkg/sub/e.py": "from pkg import d\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = same_folder_imports(tmp_path, ("pkg",))
    assert graph["pkg.b"] == {"pkg.c": 2} and graph["pkg.d"] == {"pkg.a": 1, "pkg.sub": 2} and graph["pkg.sub.e"] == {}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
