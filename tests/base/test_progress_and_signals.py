"""utils/progress.py, utils/interrupt.py, utils/batch.py, utils/devices.py on their own (issue 23)."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest
import torch

from utils.batch import exit_status, summary_lines
from utils.devices import DeviceError, resolve_device
from utils.interrupt import StopOnSignal
from utils.progress import Progress, format_duration, report_piece


def test_plain_lines_reach_a_non_terminal_while_one_item_runs():
    stream = io.StringIO()  # not a tty: timed plain lines, no bar
    with Progress(4, "infer", unit="items", interval=0.05, stream=stream) as progress:
        progress.update(1)
        progress.start_item("long_one")
        report_piece(3, 9, "sentences")
        time.sleep(0.3)  # the item is still running: lines keep coming
    lines = stream.getvalue().splitlines()
    assert lines[0] == "infer: 4 items to do" and len(lines) >= 3  # a line at the start, then timed ones
    assert lines[-1].startswith("infer: 1/4 items (25%), ") and lines[-1].endswith("; long_one: sentences 3/9")
    assert "ETA " in lines[-1] and "items/s" in lines[-1]
    resumed = io.StringIO()  # a --skip_existing rerun: what is kept is not "to do"
    with Progress(10, "infer", unit="items", initial=3, interval=60, stream=resumed):
        pass
    assert resumed.getvalue().splitlines()[0] == "infer: 7 items to do (3 already done)"


def test_quiet_prints_nothing_and_pieces_without_a_reporter_are_ignored():
    stream = io.StringIO()
    with Progress(2, "x", interval=0.01, stream=stream, quiet=True) as progress:
        progress.update(2)
        time.sleep(0.05)
    report_piece(1, 2)  # no open reporter: nothing happens
    assert stream.getvalue() == "" and format_duration(75) == "1m15s" and format_duration(4000) == "1h06m"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_sets_the_flag_then_the_default_handler_is_back(signum, capsys):
    before = signal.getsignal(signum)
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signum)
        time.sleep(0.05)
        assert stop.requested and stop.exit_code == 128 + signum
        assert signal.getsignal(signum) is before  # a second Ctrl-C would interrupt at once
    assert signal.getsignal(signum) is before
    assert "stopping after the current item" in capsys.readouterr().err


def test_summary_and_exit_status():
    failed = [(f"u{i}", f"ValueError: bad\tinput {i}") for i in range(7)]
    text = summary_lines(3, failed, None, verb="scored").splitlines()
    assert text[:5] == [f"u{i}: ValueError: bad input {i}" for i in range(5)]
    assert text[5:] == ["... and 2 more", "3 scored, 7 failed"]
    stopped = summary_lines(2, [], kept=1, not_started=4, stopped=True)
    assert stopped == "2 written, 0 failed, 1 already there (kept), 4 not started: rerun with --skip_existing"
    assert exit_status(0) == 0 and exit_status(2) == 1 and exit_status(2, allow_failures=True) == 0
    assert exit_status(0, stopped_code=130) == 130


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine")
def test_devices():
    assert resolve_device("cpu") == "cpu"
    for name in ("cuda", "gpu", "cuda:1", "tpu"):
        with pytest.raises(DeviceError, match=f"--device '?{name}"):
            resolve_device(name)


@pytest.mark.parametrize("flags, isa", [
    ("fpu sse2 avx avx2 fma", "AVX2 (no AVX-512)"),
    ("avx2 avx512f avx512bw avx512_bf16", "AVX-512 + avx512_bf16"),
    ("avx2 avx512f amx_bf16 avx512_bf16", "AVX-512 + avx512_bf16, amx_bf16"),
    ("sse2 sse4_2", "no AVX2"),
])
def test_cpu_summary_names_the_widest_vector_isa(monkeypatch, flags, isa):
    from utils import devices

    monkeypatch.setattr(devices, "_cpuinfo", lambda: {"model name": "Some CPU", "cpu family": "25", "model": "17",
                                                      "flags": flags})
    assert devices.cpu_summary() == f"Some CPU (family 25, model 17), {os.cpu_count()} logical CPUs, {isa}"
    monkeypatch.setattr(devices, "_cpuinfo", dict)  # no /proc/cpuinfo (another OS)
    assert devices.cpu_summary().endswith("vector ISA unknown") and devices.cpu_bf16_instructions() == ()
