"""The numba kernels (fused SnakeBeta, YAAPT's DP) are cached on disk and a fresh process loads them.

Each kernel used to capture a helper dispatcher in a closure; numba keys its cache on the pickled closure
variables and a dispatcher pickles differently in every process, so the cache never hit and every fresh
process compiled again (seconds on a first VC call).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from utils.numba import available

ROOT = Path(__file__).resolve().parents[2]

CALL_KERNELS = """
import numpy as np, torch
from modules.fused_snake import anti_aliased_snakebeta_nwc
from processors.yaapt_fast import path1
x = torch.randn(1, 16, 4)
taps7, down = torch.rand(7), torch.rand(12)
anti_aliased_snakebeta_nwc(x, taps7, taps7, down, torch.ones(4), torch.ones(4))
rng = np.random.default_rng(0)
print(path1(rng.random((3, 5)), rng.random((3, 3, 5)), 3, 5))
"""


def _run(cache_dir: Path) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "NUMBA_DEBUG_CACHE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CALL_KERNELS], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not available(), reason="numba is not installed")
def test_fresh_process_loads_kernels_from_the_cache_dir(tmp_path):
    first = _run(tmp_path)
    assert "data saved" in first and sorted(p.suffix for p in tmp_path.rglob("*.nb*"))
    indexes = {p.name for p in tmp_path.rglob("*.nbi")}
    assert any("fused_snake" in name for name in indexes) and any("best_path" in name for name in indexes)
    second = _run(tmp_path)
    assert "data saved" not in second  # nothing compiled again
    assert second.count("data loaded") >= 2 and second.splitlines()[-1] == first.splitlines()[-1]
