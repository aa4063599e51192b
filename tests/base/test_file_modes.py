"""Files and directories Echelon writes honour the umask, like a plain ``open()`` / ``mkdir()``.

Atomic writes go through temporary names from ``tempfile.mkstemp``/``mkdtemp``, which are created 0600/0700
whatever the umask; renamed into place unchanged, wavs, features and checkpoints stayed private to their owner.
Each test runs under two umasks so that a hard-coded mode cannot pass.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import MINI_CORPUS

UMASKS = [0o022, 0o027]


@pytest.fixture(params=UMASKS, ids=lambda m: f"umask{m:03o}")
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_wav(tmp_path, umask):
    from processors.audio import save_audio

    path = save_audio(tmp_path / "out" / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    assert mode(path) == 0o666 & ~umask
    assert mode(path.parent) == 0o777 & ~umask


def test_extracted_feature_files(tmp_path, umask):
    """Everything feature extraction writes (features, folders, lists), through the CLI as a user runs it."""
    from bins import extract_features

    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.wav").write_bytes((MINI_CORPUS / "vctk" / "p225" / "p225_003.wav").read_bytes())
    out = tmp_path / "features"
    assert extract_features.main(["--input_dir", str(clips), "--out_dir", str(out), "--features", "mel"]) == 0
    written = sorted(out.rglob("*"))
    assert any(p.suffix == ".pt" for p in written), written
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode(path) == expected, f"{path.relative_to(out)}: {mode(path):o}"


def test_checkpoint_dir_and_files(tmp_path, umask):
    from models.base.checkpoint import save_checkpoint

    model = torch.nn.Linear(3, 2)
    step_dir = save_checkpoint(tmp_path / "ckpt", 5, models={"generator": model}, config={"model_type": "toy"},
                               optimizers={"g": torch.optim.SGD(model.parameters(), lr=0.1)})
    assert mode(step_dir) == 0o777 & ~umask, f"{step_dir}: {mode(step_dir):o}"
    files = sorted(p for p in step_dir.iterdir() if p.is_file())
    assert files, "the checkpoint wrote no files"
    for path in files:
        assert mode(path) == 0o666 & ~umask, f"{path.name}: {mode(path):o}"
