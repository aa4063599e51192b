"""The writers that went through their own temp-file code now share utils/io.py: a failed write leaves the
previous file intact and no temporary file behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from processors.audio import save_audio
from processors.data.download import DownloadError, fetch_and_extract
from utils.config import save_config


def test_save_config_failure_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "config.json"
    save_config({"a": 1}, path)
    with pytest.raises(TypeError):
        save_config({"a": object()}, path)  # not JSON-serialisable
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_failed_download_leaves_no_partial_archive(tmp_path):
    with pytest.raises(DownloadError, match="no_such_archive.tar.gz"):
        fetch_and_extract((tmp_path / "no_such_archive.tar.gz").as_uri(), tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_save_audio_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.wav"
    save_audio(path, np.zeros(160, dtype=np.float32), 16000)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_audio(path, np.zeros(160, dtype=np.float32), 16000, subtype="NOT_A_SUBTYPE")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.wav"]
