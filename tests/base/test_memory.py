"""utils.memory.release_mapped_pages: drops only never-written pages of file-mapped weights, and data survives."""

from __future__ import annotations

import sys

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
