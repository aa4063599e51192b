"""processors.data.crops: crops are windows of the real clip (context, alignment, padding), reproducible per
(seed, epoch, index); validation clips are cut to whole hops; collate pads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from processors.audio import load_audio
from processors.data.crops import AudioCrops, collate_clips
from processors.data.manifest import ManifestEntry, write_manifest
from tests.helpers import MINI_CORPUS

CLIPS = ("LJ001-0001", "LJ001-0002")
RATE, HOP = 16000, 256


@pytest.fixture()
def manifest(tmp_path):
    entries = [ManifestEntry(id=c, path=str(MINI_CORPUS / "ljspeech" / f"{c}.wav"), speaker="lj", text="",
                             duration=1.5 + i, sample_rate=RATE) for i, c in enumerate(CLIPS)]  # fmt: skip
    return str(write_manifest(entries, tmp_path / "m.jsonl"))


def _crops(manifest, **kw):
    args = dict(sample_rate=RATE, segment_samples=4096, hop_length=HOP, seed=3, random_crop=True, max_valid_seconds=1.0)
    return AudioCrops(manifest, **{**args, **kw})


def _position(window: np.ndarray, clip: np.ndarray) -> int:
    """Offset of ``window`` inside ``clip`` (the window is an exact slice)."""
    candidates = np.flatnonzero(clip[: len(clip) - len(window) + 1] == window[0])
    hits = [int(s) for s in candidates if np.array_equal(clip[s : s + len(window)], window)]
    assert len(hits) == 1, hits
    return hits[0]


def test_random_crops_are_slices_and_depend_only_on_seed_epoch_index(manifest):
    clip = load_audio(MINI_CORPUS / "ljspeech" / f"{CLIPS[0]}.wav", RATE)
    a, b = _crops(manifest), _crops(manifest)
    first = a[0].numpy()[0]
    assert first.shape == (4096,) and _position(first, clip) >= 0
    assert torch.equal(a[0], b[0])
    starts = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        starts.add(_position(a[0].numpy()[0], clip))
    assert len(starts) > 1  # the epoch moves the window
    assert a.durations() == [1.5, 2.5] and a.lengths() == [24000, 40000]


def test_context_pads_both_sides_and_windows_start_on_the_hop(manifest):
    clip = load_audio(MINI_CORPUS / "ljspeech" / f"{CLIPS[0]}.wav", RATE)
    context = 2 * HOP
    padded = np.pad(clip, (context, context))
    crops = _crops(manifest, context=context, crop_step=HOP)
    for epoch in range(5):
        crops.set_epoch(epoch)
        window = crops[0].numpy()[0]
        assert window.shape == (4096 + 2 * context,)
        assert _position(window, padded) % HOP == 0


def test_short_clips_are_zero_padded_and_validation_cuts_to_hops(manifest):
    clip = load_audio(MINI_CORPUS / "ljspeech" / f"{CLIPS[0]}.wav", RATE)
    long = _crops(manifest, segment_samples=len(clip) + 1000)[0].numpy()[0]
    assert np.array_equal(long[: len(clip)], clip) and not np.any(long[len(clip) :])
    whole = _crops(manifest, random_crop=False)
    item = whole[0].numpy()[0]
    assert len(item) == min(len(clip), RATE) // HOP * HOP and np.array_equal(item, clip[: len(item)])
    batch = collate_clips([whole[0], whole[0][:, :HOP]])
    assert batch["wav"].shape == (2, 1, len(item)) and batch["lengths"].tolist() == [len(item), HOP]
    assert not batch["wav"][1, :, HOP:].any()


def test_bad_settings_and_empty_manifests_fail_with_the_culprit(tmp_path, manifest):
    with pytest.raises(ValueError, match="crop_step"):
        _crops(manifest, crop_step=0)
    empty = write_manifest([], tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="empty.jsonl: no items"):
        _crops(str(empty))
