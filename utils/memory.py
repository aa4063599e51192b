"""The process's freed memory: given back to the operating system after loading, kept for reuse during inference."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import struct

__all__ = ["keep_freed_memory", "peak_rss_mb", "release_freed_memory", "release_mapped_pages"]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB since it started its program (``VmHWM``).

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux folds the peak of the address space a process had before
    ``exec`` into it, and a child started by ``subprocess`` (vfork + exec) ran on its parent's, so a fresh
    child of a 1.7 GB parent reports at least 1.7 GB there whatever it does itself. ``ru_maxrss`` is the
    fallback where ``/proc`` is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux, bytes on macOS


@functools.lru_cache(maxsize=None)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _malloc_trim():
    libc = _libc()
    return getattr(libc, "malloc_trim", None) if libc is not None else None


def release_freed_memory() -> bool:
    """glibc ``malloc_trim(0)``: return the free parts of the heap to the OS (False where there is no glibc).

    After a model is loaded and prepared, the official-format state dict and the weight-norm factors it
    replaced are freed, but glibc keeps those pages (its mmap threshold grows after large frees, so many
    weights sit in the heap): resident memory stays at the load peak. Trimming brings it down to what is in use.
    """
    trim = _malloc_trim()
    return bool(trim is not None and trim(0) >= 0)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEPT_FREE_BYTES = 64 << 20  # free heap top kept before glibc gives it back
HEAP_ALLOCATION_BYTES = 32 << 20  # largest block served from the heap (glibc's own upper limit for it)
# the ways a user tunes glibc malloc before start: their settings stay
_USER_MALLOC_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_kept = None


def keep_freed_memory() -> bool:
    """Let glibc reuse freed blocks of up to 32 MB instead of mapping fresh pages for every one (inference).

    Inference allocates and frees the same few tensor sizes thousands of times (SpeechSR-48k on 12.5 s of speech:
    ~1,300 window-sized convolution outputs of ~1 MB). glibc serves blocks over its mmap threshold with fresh
    pages, and gives the heap's free top back once it passes its trim threshold; its adaptive thresholds do
    not settle on this pattern, so the kernel faulted in and zeroed ~540 MB per SpeechSR run: 0.13-0.23 s of
    system time in a 1.3 s call. Serving blocks of up to 32 MB from the heap and keeping up to 64 MB of it free
    makes that ~0 (the call 1.26-1.33 s -> 1.06-1.11 s; docs/perf-log.md, sixth pass; current pipeline
    figures: the HierSpeech++ README). The peak resident memory is unchanged: freed blocks are reused, not added.

    Process-wide, so it is applied once (the models' ``prepare_for_inference`` call it). Left alone: glibc
    settings a user made (``MALLOC_*_`` variables or ``glibc.malloc`` tunables), ``ECHELON_KEEP_FREED_MEMORY=0``,
    and a C library without ``mallopt``. Returns whether the settings are in force.
    """
    global _kept
    if _kept is None:
        user_set = (any(name in os.environ for name in _USER_MALLOC_SETTINGS)
                    or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
                    or os.environ.get("ECHELON_KEEP_FREED_MEMORY", "1").strip() == "0")
        libc = None if user_set else _libc()
        mallopt = getattr(libc, "mallopt", None) if libc is not None else None
        _kept = bool(mallopt is not None and mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES) == 1
                     and mallopt(_M_MMAP_THRESHOLD, HEAP_ALLOCATION_BYTES) == 1)
    return _kept


_MADV_DONTNEED = 4
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _file_mapping_of(start: int, stop: int) -> bool:
    """Whether ``[start, stop)`` lies inside one private mapping of a file (``/proc/self/maps``)."""
    with open("/proc/self/maps", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split(maxsplit=5)
            lo, hi = (int(v, 16) for v in fields[0].split("-"))
            if lo <= start and stop <= hi:
                path = fields[5].strip() if len(fields) > 5 else ""
                return fields[1][3] == "p" and fields[4] != "0" and path.startswith("/")
    return False


def _never_written(first: int, last: int) -> bool:
    """Whether no page in ``[first, last)`` (page-aligned, in a private file mapping) holds a private copy.

    ``/proc/self/pagemap`` has one 64-bit entry per page: bit 63 present, bit 62 swapped, bit 61 file page. A
    page that was written has become anonymous (present and not a file page, or swapped out).
    """
    count = (last - first) // _PAGE
    with open("/proc/self/pagemap", "rb") as fh:
        fh.seek(first // _PAGE * 8)
        entries = fh.read(count * 8)
    if len(entries) != count * 8:
        return False
    for (entry,) in struct.iter_unpack("<Q", entries):
        if entry >> 62 & 1 or (entry >> 63 & 1 and not entry >> 61 & 1):
            return False
    return True


def release_mapped_pages(tensor) -> int:
    """Drop from resident memory the pages of a tensor that maps a weights file; returns the bytes dropped.

    A model loaded from safetensors (or with ``torch.load(..., mmap=True, weights_only=True)``) reads its weights
    straight from the page cache through a private (copy-on-write) mapping of the file. When a derived copy
    replaces a weight for good (a folded weight norm, a re-laid-out kernel), the original's pages stay resident
    although nothing reads them: this gives them back (``madvise(MADV_DONTNEED)``). Only pages that still hold
    the file's bytes are dropped: the tensor must lie in a private file mapping none of whose pages in that range
    was ever written (checked in ``/proc/self/pagemap``), so a later read simply faults them in again from the
    file. Anything else (ordinary
    memory, a written page, no Linux ``/proc`` or libc) is left alone and 0 is returned.
    """
    size = tensor.untyped_storage().nbytes()
    if size == 0 or tensor.device.type != "cpu":
        return 0
    start = tensor.untyped_storage().data_ptr()
    first, last = -(-start // _PAGE) * _PAGE, (start + size) // _PAGE * _PAGE  # whole pages inside only
    try:
        if last <= first or not _file_mapping_of(start, start + size) or not _never_written(first, last):
            return 0
    except OSError:  # no /proc
        return 0
    libc = _libc()
    madvise = getattr(libc, "madvise", None) if libc is not None else None
    if madvise is None:
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return last - first if madvise(ctypes.c_void_p(first), last - first, _MADV_DONTNEED) == 0 else 0
