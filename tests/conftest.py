"""Suite-wide test settings.

Torch runs on one intra-op thread in tests (override with ECHELON_TEST_THREADS): on a small shared CI machine
extra threads oversubscribe the cores (tiny models ran ~13x slower under load), and parity numbers are
then computed exactly as the fixtures were (one thread).
"""

import os

import pytest
import torch


TEST_THREADS = int(os.environ.get("ECHELON_TEST_THREADS", "1"))


@pytest.fixture(autouse=True, scope="session")
def _torch_threads_session():
    # Session scope: module- and class-scoped fixtures (models trained once per file) run before any
    # function-scoped fixture, so without this they would train on every core.
    before = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _torch_threads():
    # Per test as well: a test that changes the thread count must not leak it into the next one.
    before = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(before)
