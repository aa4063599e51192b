"""HierSpeech++ training data: manifest reading, frame-consistent crops, seeding per (seed, epoch, index), collate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.tts.hierspeechpp.dataset import HierSpeechTrainDataset, collate
from tests.helpers import MINI_CORPUS

CLIPS = ["vctk/p225/p225_003.wav", "vctk/p226/p226_003.wav", "vctk/p227/p227_005.wav"]


def fake_log_f0(wav: np.ndarray) -> np.ndarray:
    """Deterministic stand-in with the real frame rate (one value per 80 samples) tracking the input."""
    frames = wav.shape[0] // 80
    return np.abs(wav[: frames * 80]).reshape(frames, 80).mean(axis=1).astype(np.float32)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    rows = [{"id": Path(c).stem, "path": str(MINI_CORPUS / c), "speaker": c.split("/")[1], "text": "",
             "duration": 6.0, "sample_rate": 16000} for c in CLIPS]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_missing_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="manifest not found"):
        HierSpeechTrainDataset(tmp_path / "missing.jsonl", f0_fn=fake_log_f0)


def test_crop_is_frame_consistent_and_seeded(manifest: Path) -> None:
    ds = HierSpeechTrainDataset(manifest, max_frames=40, f0_fn=fake_log_f0, perturb_audio=False, seed=3)
    full = ds._load(0)
    item = ds[0]
    assert item["audio"].shape == (40 * 320,) and item["log_f0"].shape == (160,)
    # The F0 window is the F0 of the same samples: locate the audio crop in the full clip.
    start = int(np.flatnonzero([np.array_equal(full["audio"][s * 320 : s * 320 + 640], item["audio"][:640])
                                for s in range(full["audio"].shape[0] // 320 - 40 + 1)])[0])  # fmt: skip
    np.testing.assert_array_equal(item["log_f0"], full["log_f0"][4 * start : 4 * start + 160])
    np.testing.assert_array_equal(ds[0]["audio"], item["audio"])  # same epoch -> same crop
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        starts.add(ds[0]["audio"][:64].tobytes())
    assert len(starts) > 1, "the crop must move between epochs"


def test_perturbed_copy_and_collate(manifest: Path) -> None:
    ds = HierSpeechTrainDataset(manifest, max_frames=30, f0_fn=fake_log_f0, perturb_audio=True, seed=0)
    items = [ds[i] for i in range(3)]
    items[1] = {**items[1], "audio": items[1]["audio"][: 20 * 320], "audio_aug": items[1]["audio_aug"][: 20 * 320],
                "log_f0": items[1]["log_f0"][:80]}  # fmt: skip
    for it in items:
        assert it["audio_aug"].shape == it["audio"].shape
        assert not np.allclose(it["audio_aug"], it["audio"], atol=1e-3)
    np.testing.assert_array_equal(ds[2]["audio_aug"], items[2]["audio_aug"])
    batch = collate(items)
    assert batch["lengths"].tolist() == [30, 20, 30]
    assert batch["audio"].shape == (3, 1, 30 * 320) and batch["audio_aug"].shape == (3, 1, 30 * 320)
    assert batch["log_f0"].shape == (3, 1, 120)
    assert torch.all(batch["audio"][1, 0, 20 * 320 :] == 0) and torch.all(batch["log_f0"][1, 0, 80:] == 0)


def test_precomputed_features_are_used(manifest: Path, tmp_path: Path) -> None:
    feats = tmp_path / "features"
    for kind in ("f0", "ssl"):
        (feats / kind).mkdir(parents=True)
    ds_ref = HierSpeechTrainDataset(manifest, f0_fn=fake_log_f0, perturb_audio=False)
    frames = ds_ref._load(0)["audio"].shape[0] // 320
    for row in ds_ref.rows:
        torch.save(torch.full((4 * frames + 8,), 5.0), feats / "f0" / f"{row.id}.pt")
        torch.save(torch.arange(8 * (frames + 1), dtype=torch.float32).view(1, 8, frames + 1),
                   feats / "ssl" / f"{row.id}.pt")  # fmt: skip
    ds = HierSpeechTrainDataset(manifest, features_dir=feats, max_frames=None, perturb_audio=True)
    item = ds[0]
    assert "audio_aug" in item  # perturbed SSL not precomputed -> perturbed audio for on-the-fly SSL
    assert item["ssl"].shape == (8, frames) and np.all(item["log_f0"] == 5.0)
    with pytest.raises(ValueError, match="needs features_dir"):
        HierSpeechTrainDataset(manifest)
