"""``benchmarks/cuda_check.sh`` on a machine without a GPU: its argument checks (the GPU steps run in tests/cuda)."""

from __future__ import annotations

import subprocess

from tests.helpers import REPO_ROOT


def test_cuda_check_refuses_an_unknown_step(tmp_path):
    """Runs everywhere (no GPU needed): a misspelt step is one line naming it and exit 2, before anything runs."""
    done = subprocess.run(["bash", str(REPO_ROOT / "benchmarks" / "cuda_check.sh"), str(tmp_path), "tests", "wavegrad"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "cuda_check: unknown step 'wavegrad' (steps: tests wavegrad2_rtf hierspeechpp_vc alias_free)"]
    assert not any(tmp_path.iterdir())  # nothing ran, nothing was written
