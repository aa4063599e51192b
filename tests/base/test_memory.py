"""utils.memory: release_mapped_pages drops only never-written pages of file-mapped weights (data survives);
keep_freed_memory makes glibc reuse freed tensor memory instead of faulting in fresh pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from utils.memory import release_mapped_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")


def _resident_bytes_of(tensor: torch.Tensor) -> int:
    """Resident bytes of the pages the tensor's storage covers (``/proc/self/pagemap`` present bits)."""
    page = 4096
    start = tensor.untyped_storage().data_ptr()
    first, last = start // page, (start + tensor.untyped_storage().nbytes() - 1) // page
    with open("/proc/self/pagemap", "rb") as fh:
        fh.seek(first * 8)
        entries = fh.read((last - first + 1) * 8)
    return page * sum(entries[i + 7] >> 7 & 1 for i in range(0, len(entries), 8))


@pytest.fixture
def mapped_weights(tmp_path):
    """Two tensors of a ``torch.save`` file loaded with ``mmap=True`` (a private mapping of the file)."""
    torch.manual_seed(0)
    saved = {"big": torch.randn(1024, 1024), "other": torch.randn(300, 1000)}
    torch.save(saved, tmp_path / "w.pt")
    loaded = torch.load(tmp_path / "w.pt", mmap=True, weights_only=True)
    return saved, loaded


def test_drops_read_pages_of_a_mapped_file_and_reads_them_again(mapped_weights):
    saved, loaded = mapped_weights
    big = loaded["big"]
    assert torch.equal(big, saved["big"])  # every page read, so resident
    before = _resident_bytes_of(big)
    assert before >= 4 << 20
    released = release_mapped_pages(big)
    assert released >= (4 << 20) - 2 * 4096  # whole pages inside the 4 MB tensor
    assert _resident_bytes_of(big) <= before - released + 2 * 4096
    assert torch.equal(big, saved["big"])  # faulted in again from the file
    assert torch.equal(loaded["other"], saved["other"])


def test_leaves_written_pages_and_ordinary_memory_alone(mapped_weights):
    saved, loaded = mapped_weights
    other = loaded["other"]
    other[150, 10] = 42.0  # one page now holds a private copy: dropping it would lose the write
    assert release_mapped_pages(other) == 0
    assert other[150, 10].item() == 42.0
    heap = saved["big"].clone()
    assert release_mapped_pages(heap) == 0
    assert torch.equal(heap, saved["big"])
    assert release_mapped_pages(torch.empty(0)) == 0


# Run in a fresh interpreter: the malloc settings are process-wide and applied once. glibc is first put in the
# state its adaptive thresholds reach during inference (blocks over 128 KB mapped fresh, the heap's free top
# given back past 1 MB); then six 4 MB tensors are written and freed, 20 times, before and after.
_ALLOCATION_PATTERN = """
import ctypes, resource, sys, torch
from utils.memory import keep_freed_memory
ctypes.CDLL(None).mallopt(-1, 1 << 20)
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        blocks = [torch.ones(1 << 20) for _ in range(6)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
first = faults()
kept = keep_freed_memory()
faults()  # the heap grows to the pattern's size once
print(first, int(kept), faults())
"""


def _faults_before_and_after(**env: str) -> tuple:
    root = Path(__file__).resolve().parents[2]
    # the machine's own malloc settings (if any) are dropped: each test sets exactly the ones it is about
    base = {key: value for key, value in os.environ.items()
            if not key.startswith("MALLOC_") and key not in ("GLIBC_TUNABLES", "ECHELON_KEEP_FREED_MEMORY")}
    run = subprocess.run([sys.executable, "-c", _ALLOCATION_PATTERN], cwd=root, capture_output=True, text=True,
                         env={**base, "PYTHONPATH": str(root), **env}, timeout=120, check=True)
    first, kept, after = (int(v) for v in run.stdout.split())
    return first, bool(kept), after


@pytest.mark.skipif(not hasattr(__import__("ctypes").CDLL(None), "mallopt"), reason="needs glibc's mallopt")
def test_keep_freed_memory_stops_page_faults_on_reused_sizes():
    first, kept, after = _faults_before_and_after()
    assert first > 20 * 6 * 1000  # every 4 MB block faulted in afresh (1,024 pages each)
    assert kept
    assert after < 1000


@pytest.mark.skipif(not hasattr(__import__("ctypes").CDLL(None), "mallopt"), reason="needs glibc's mallopt")
@pytest.mark.parametrize("env", [{"ECHELON_KEEP_FREED_MEMORY": "0"}, {"MALLOC_ARENA_MAX": "2",
                                                                     "MALLOC_TOP_PAD_": "0"}])
def test_keep_freed_memory_leaves_settings_the_user_made(env):
    first, kept, after = _faults_before_and_after(**env)
    assert not kept
    assert after > 20 * 6 * 1000  # glibc left as it was


def test_peak_rss_of_a_subprocess_is_its_own():
    """A child started while its parent holds ~200 MB reports its own peak, not the parent's (ru_maxrss does on
    Linux: the peak of the address space before ``exec`` is folded in, and a vfork child ran on its parent's)."""
    held = torch.ones(50_000_000)  # 200 MB, every page touched
    code = "from utils.memory import peak_rss_mb; print(peak_rss_mb())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    child_peak = float(done.stdout.strip())
    assert 1 < child_peak < 150, child_peak
    from utils.memory import peak_rss_mb

    assert peak_rss_mb() >= held.numel() * 4 / 2**20
