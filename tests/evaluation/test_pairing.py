"""Pairing by utterance id: every mismatch is an error that names the ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evaluation.pairing import PairingError, pair, read_manifest, read_prompt_mapping, scan_generated


def _wav(path: Path, seconds: float = 0.2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(16000 * seconds)) / 3.0)).astype(np.float32), 16000)
    return path


def _manifest(folder: Path, ids) -> Path:
    lines = []
    for utt_id in ids:
        _wav(folder / "ref" / f"{utt_id}.wav")
        lines.append(json.dumps({"id": utt_id, "path": f"ref/{utt_id}.wav", "speaker": "s1", "text": "hello",
                                 "duration": 0.2, "sample_rate": 16000}))
    path = folder / "test.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pairs_by_id_not_by_listing_order(tmp_path) -> None:
    manifest = read_manifest(_manifest(tmp_path, ["b_2", "a_1"]))
    for utt_id in ("a_1", "b_2"):
        _wav(tmp_path / "gen" / "nested" / f"{utt_id}.wav")
    paired = pair(scan_generated(tmp_path / "gen"), manifest)
    assert [p.utt_id for p in paired] == ["b_2", "a_1"]  # manifest order
    assert all(p.generated.stem == p.utt_id == p.reference.stem for p in paired)


def test_missing_and_extra_ids_are_named(tmp_path) -> None:
    manifest = read_manifest(_manifest(tmp_path, ["u1", "u2", "u3"]))
    for utt_id in ("u1", "u3", "stray"):
        _wav(tmp_path / "gen" / f"{utt_id}.wav")
    with pytest.raises(PairingError) as err:
        pair(scan_generated(tmp_path / "gen"), manifest, system="vits")
    message = str(err.value)
    assert message.startswith("vits:") and "no generated audio: u2" in message and "no manifest entry: stray" in message


def test_duplicate_generated_ids_and_bad_manifest_lines(tmp_path) -> None:
    _wav(tmp_path / "gen" / "x" / "u1.wav")
    _wav(tmp_path / "gen" / "y" / "u1.wav")
    with pytest.raises(PairingError, match="two generated files share the id 'u1'"):
        scan_generated(tmp_path / "gen")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(PairingError, match=r"bad.jsonl:2: duplicate id 'a'"):
        read_manifest(bad)
    bad.write_text('{"text": "x"}\n')
    with pytest.raises(PairingError, match=r"bad.jsonl:1: every manifest line needs an 'id'"):
        read_manifest(bad)
    bad.write_text('{"id": "a", "path": "nowhere.wav"}\n')
    with pytest.raises(PairingError, match="nowhere.wav"):
        read_manifest(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairingError, match="no audio files"):
        scan_generated(tmp_path / "empty")


def test_prompt_mapping_json_and_tsv(tmp_path) -> None:
    manifest = read_manifest(_manifest(tmp_path, ["u1", "u2"]))
    for utt_id in ("u1", "u2"):
        _wav(tmp_path / "gen" / f"{utt_id}.wav")
    _wav(tmp_path / "prompts" / "p.wav")
    (tmp_path / "prompts.json").write_text(json.dumps({"u1": "prompts/p.wav", "u2": "prompts/p.wav"}))
    (tmp_path / "prompts.tsv").write_text("u1\tprompts/p.wav\n")
    paired = pair(scan_generated(tmp_path / "gen"), manifest, read_prompt_mapping(tmp_path / "prompts.json"))
    assert all(p.prompt == tmp_path / "prompts" / "p.wav" for p in paired)
    with pytest.raises(PairingError, match="1 manifest id has no prompt: u2"):
        pair(scan_generated(tmp_path / "gen"), manifest, read_prompt_mapping(tmp_path / "prompts.tsv"))
