"""The one JSONL reader (processors.data.manifest.read_jsonl) and its one relative-path rule, seen through every
reader built on it: manifests, echelon-infer jobs, evaluation reference manifests, benchmark manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evaluation.benchmark.protocol import read_manifest as protocol_manifest
from evaluation.pairing import PairingError, read_manifest as reference_manifest
from models.base.inference import InferenceError
from models.base.task_inference import read_jsonl as read_jobs
from processors.data.manifest import ManifestError, model_speaker_id, read_jsonl, read_manifest


def test_relative_paths_resolve_against_the_files_folder_everywhere(tmp_path, monkeypatch) -> None:
    data = tmp_path / "corpus"
    (data / "wavs").mkdir(parents=True)
    sf.write(data / "wavs" / "a.wav", np.zeros(1600, np.float32), 16000)
    row = {"id": "a", "path": "wavs/a.wav", "speaker": "s", "text": "Hi.", "duration": 0.1, "sample_rate": 16000}
    manifest = data / "m.jsonl"
    manifest.write_text(json.dumps(row) + "\n\n", encoding="utf-8")
    jobs = data / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "j", "text": "Hi.", "prompt": "wavs/a.wav", "extra": "wavs/x"}) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # never the current directory
    expected = data / "wavs" / "a.wav"
    assert Path(read_jsonl(manifest)[0]["path"]) == expected
    assert Path(read_manifest(manifest)[0].path) == expected
    assert Path(read_jobs(jobs, ("id",))[0]["prompt"]) == expected
    assert read_jobs(jobs, ("id",))[0]["extra"] == "wavs/x"  # only path fields are paths
    assert reference_manifest(manifest)["a"].path == expected
    assert Path(protocol_manifest(manifest)[0]["path"]) == expected.resolve()
    # absolute paths stay as they are
    manifest.write_text(json.dumps({**row, "path": str(expected)}) + "\n", encoding="utf-8")
    assert Path(read_manifest(manifest)[0].path) == expected


def test_bad_lines_name_the_file_and_line(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"bad.jsonl:2: a row needs 'id'"):
        read_jsonl(bad)
    with pytest.raises(InferenceError, match=r"bad.jsonl:2"):
        read_jobs(bad, ("id",))
    with pytest.raises(PairingError, match=r"bad.jsonl:2: every manifest line needs an 'id'"):
        reference_manifest(bad)
    bad.write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(bad)
    with pytest.raises(ManifestError, match="file not found"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_model_speaker_id_takes_names_and_ids() -> None:
    names = ["ann", "bob", "cy"]
    assert model_speaker_id("bob", names, 3, True) == 1 and model_speaker_id(2, names, 3, True) == 2
    assert model_speaker_id("1", [], 4, True) == 1 and model_speaker_id(None, names, 1, False) is None
    for bad, match in (("dan", "unknown speaker"), (3, "outside"), (None, "give a speaker")):
        with pytest.raises(ValueError, match=match):
            model_speaker_id(bad, names, 3, True)
    with pytest.raises(ValueError, match="single speaker"):
        model_speaker_id("ann", [], 1, False)
