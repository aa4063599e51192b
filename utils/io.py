"""Atomic file writes that honour the umask: the one place Echelon writes through a temporary file.

``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 entries whatever the umask, so a file renamed into place
from them would stay private; every helper here gives the result the mode a plain ``open()``/``mkdir()``
would have. On any failure the temporary file (or folder) is removed and the destination is untouched.

    with atomic_path(out / "a.wav") as tmp:      # write anything to tmp; renamed onto the target on success
        soundfile.write(tmp, wav, sr)
    atomic_write_text(path, text); atomic_torch_save(path, obj)
    tmp_dir = make_temp_dir(parent)  ...  publish_dir(tmp_dir, final)    # directories (checkpoints)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

PathLike = Union[str, os.PathLike]


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux), else by a set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_default(path: Path, base: int) -> None:
    with contextlib.suppress(OSError):
        os.chmod(path, base & ~current_umask())


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (mode as by ``open``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _chmod_default(tmp, 0o666)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_torch_save(path: PathLike, obj: Any) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def make_temp_dir(parent: PathLike, prefix: str = ".tmp-") -> Path:
    """A fresh folder inside ``parent`` (created with the umask's mode, unlike ``mkdtemp``'s 0700)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    _chmod_default(tmp, 0o777)
    return tmp


def publish_dir(tmp: PathLike, final: PathLike) -> Path:
    """Move a finished temporary folder onto ``final`` (an existing ``final`` is replaced)."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


class OutputPathError(ValueError):
    """An output folder that cannot be used (a file of that name, no write permission); names the path."""


def check_writable_dir(path: PathLike, what: str = "output directory", create: bool = True) -> Path:
    """Create ``path`` (with parents) or fail with one line saying why, before any work starts.

    ``create=False`` only checks that it could be created (the nearest existing folder is writable)."""
    path = Path(path)
    existing = next(p for p in [path, *path.parents] if p.exists() or p == Path(p.anchor or "."))
    if existing.exists() and not existing.is_dir():
        raise OutputPathError(f"{what} {path}: {existing} is a file, not a directory")
    if not create:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputPathError(f"{what} {path}: {existing} is not writable")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(f"cannot create {what} {path}: {err.strerror or err}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path} is not writable")
    return path
