"""Optional numba support shared by every compiled kernel (Snake activation, fast YAAPT).

numba is a listed dependency, but each kernel has a plain numpy/torch path, so everything keeps working where
it is missing: callers check :func:`available` before compiling.
"""

from __future__ import annotations

try:
    import numba
except ImportError:  # pragma: no cover - exercised only on installs without numba
    numba = None

__all__ = ["available", "cached_njit", "numba"]


def available() -> bool:
    """True when numba is importable (the compiled paths can run)."""
    return numba is not None


def cached_njit(**options):
    """``numba.njit(cache=True, nogil=True, **options)``, compiled in memory only where no cache directory is
    writable (numba refuses to build a caching dispatcher then)."""
    def decorate(function):
        try:
            return numba.njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:
            return numba.njit(cache=False, nogil=True, **options)(function)

    return decorate
