"""Suite-wide test settings.

Torch runs on one intra-op thread in tests (override with ECHELON_TEST_THREADS): on a small shared CI machine
extra threads oversubscribe the cores (tiny models ran ~13x slower under load), and parity numbers are
then computed exactly as the fixtures were (one thread).
"""

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("ECHELON_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)
