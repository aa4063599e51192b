"""Giving memory the process freed back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_freed_memory"]


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_freed_memory() -> bool:
    """glibc ``malloc_trim(0)``: return the free parts of the heap to the OS (False where there is no glibc).

    After a model is loaded and prepared, the official-format state dict and the weight-norm factors it
    replaced are freed, but glibc keeps those pages (its mmap threshold grows after large frees, so many
    weights sit in the heap): resident memory stays at the load peak. Trimming brings it down to what is in use.
    """
    trim = _malloc_trim()
    return bool(trim is not None and trim(0) >= 0)
