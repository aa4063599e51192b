"""utils.threads.run_beside: both results, the side task in another thread, errors surface after both end."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from utils.threads import run_beside, torch_threads


def test_side_runs_in_a_worker_thread_beside_main():
    main_thread = threading.get_ident()
    side, main = run_beside(lambda: threading.get_ident(), lambda: threading.get_ident())
    assert main == main_thread and side != main_thread
    assert run_beside(lambda: 1, lambda: 2, parallel=False) == (1, 2)


def test_errors_are_raised_after_both_finished():
    finished = []

    def slow_side():
        time.sleep(0.05)
        finished.append("side")

    with pytest.raises(ZeroDivisionError):
        run_beside(slow_side, lambda: 1 / 0)
    assert finished == ["side"]
    with pytest.raises(KeyError):
        run_beside(lambda: {}["missing"], lambda: None)


def test_torch_threads_sets_this_thread_only_and_restores():
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        inside = torch.get_num_threads()
    assert inside == before + 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
