"""utils.threads: run_beside (both results, the side task in another thread, errors surface after both end),
map_with_side_worker (the side worker joins the main work once free) and torch_threads."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from utils.threads import map_with_side_worker, run_beside, torch_threads


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


def _slow_square(item: int) -> tuple:
    time.sleep(0.02)
    return item * item, threading.get_ident(), torch.is_inference_mode_enabled(), torch.get_num_threads()


def test_map_outside_run_beside_is_a_plain_loop():
    results = map_with_side_worker(_slow_square, range(4))
    assert [r[0] for r in results] == [0, 1, 4, 9]
    assert {r[1] for r in results} == {threading.get_ident()}


def test_side_worker_takes_items_once_its_own_task_is_done():
    def side():
        time.sleep(0.05)
        return threading.get_ident()

    def main():
        with torch.inference_mode():
            return map_with_side_worker(_slow_square, range(12)), threading.get_ident()

    side_thread, (results, main_thread) = run_beside(side, main)
    assert [r[0] for r in results] == [i * i for i in range(12)]  # every item once, in order
    assert {r[1] for r in results} == {main_thread, side_thread}  # both threads took items
    assert all(r[2] for r in results)  # the caller's inference mode, in the helper too
    assert all(r[3] == 1 for r in results if r[1] == side_thread)  # the helper stays one torch thread
    # without run_beside around it, nothing is shared any more
    assert {r[1] for r in map_with_side_worker(_slow_square, range(3))} == {threading.get_ident()}


def test_an_item_error_reaches_the_caller_and_no_thread_starts_another_item():
    started = []

    def item(index: int) -> int:
        started.append(index)
        time.sleep(0.02)
        if index == 2:
            raise ValueError("item 2")
        return index

    with pytest.raises(ValueError, match="item 2"):
        run_beside(lambda: None, lambda: map_with_side_worker(item, range(40)))
    assert len(started) < 10  # the items already running finish; no new ones start (40 without the stop)
