"""The ``extra.durations`` schema and its helpers (processors/data/durations.py): units, framings, transfer onto
another front end's phonemes, fitting to the audio."""

from __future__ import annotations

import pytest
import torch

from processors.data.durations import (fit_durations, manifest_durations, per_phoneme, row_durations,
                                       row_frame_seconds, text_with_durations, to_frames, transfer)
from processors.data.manifest import ManifestEntry
from processors.text.frontend import TextError, TextFrontend


def row(extra, text="A cat.", sample_rate=22050):
    return ManifestEntry("r", "r.wav", "s", text, 1.0, sample_rate, extra)


def test_durations_over_another_framing_move_onto_our_phonemes():
    """Bare, blank-interspersed and Piper-framed (^ _ p _ … p _ $) durations -> frames per phoneme; a row whose
    phoneme string differs from ours keeps the frames of equal stretches and shares a replaced one."""
    assert per_phoneme([3, 4], "ab") == ([3, 4], ["a", "b"])
    assert per_phoneme([1, 3, 1, 4, 1], "ab") == ([5, 5], ["a", "b"])
    assert per_phoneme([2, 1, 3, 1, 4, 1, 5, 1, 3], "abc") == ([7, 5, 9], ["a", "b", "c"])
    assert per_phoneme([1, 1, 2, 1, 3, 1, 1], "ç") == ([5, 5], ["c", "\u0327"])  # Piper splits NFD code points
    with pytest.raises(ValueError, match="fit no framing"):
        per_phoneme([1, 2], "abc")
    assert transfer([7, 5, 9], "abc", "axbc") == [7, 0, 5, 9]  # ours only: 0 frames
    assert transfer([7, 5, 9], "abc", "ac") == [12, 9]  # row only: to the preceding phoneme
    assert transfer([4, 6], "ab", "aYZ") == [4, 3, 3]  # replaced: shared evenly
    assert transfer([2, 5], "xa", "a") == [7]


def test_frame_unit_hop_at_the_row_rate_then_frame_seconds_then_the_model_frame():
    assert row_frame_seconds(row({"hop_length": 256, "frame_seconds": 0.01161}), 0.02) == 256 / 22050
    assert row_frame_seconds(row({"frame_seconds": 0.0125}), 0.02) == 0.0125
    assert row_frame_seconds(row({}), 0.02) == 0.02
    with pytest.raises(ValueError, match="hop_length"):
        row_frame_seconds(row({"hop_length": 0}), 0.02)
    # 10 ms frames onto 20 ms frames on cumulative boundaries (1.5 3 4.5 6, halves to even): the total never drifts
    assert to_frames([3, 3, 3, 3], 0.01, 0.02) == [2.0, 1.0, 1.0, 2.0]
    assert manifest_durations(row({"durations": [4, 6], "hop_length": 128}), 256 / 22050) == [2.0, 3.0]
    assert manifest_durations(row({}), 0.01) is None
    with pytest.raises(ValueError, match="non-negative"):
        row_durations(row({"durations": [1, -2]}))


def test_fit_to_the_audio_within_two_frames():
    assert fit_durations([3, 4, 5], 12) == [3, 4, 5]
    assert fit_durations([3, 4, 5], 14) == [3, 4, 7]
    assert fit_durations([3, 4, 1], 6) == [3, 3, 0]  # taken from the end, never below 0
    with pytest.raises(ValueError, match="sum to 12 frames but the audio has 20"):
        fit_durations([3, 4, 5], 20)


def test_text_with_durations_moves_piper_framed_frames_onto_our_ids():
    frontend = TextFrontend(add_blank=False)
    symbols = frontend("A cat.")
    phonemes = symbols["cleaned"]
    piper = [1, 0] + [x for _ in phonemes for x in (2, 1)] + [5]  # ^ _ p _ ... p _ $
    ids, frames = text_with_durations(row({"durations": piper, "phonemes": phonemes, "hop_length": 256}), frontend,
                                      256 / 22050)
    assert ids == symbols["ids"] and len(frames) == len(ids) and sum(frames) == sum(piper)
    assert frames[0] == 4 and frames[-1] == 3 + 5  # ^ and _ to the first phoneme; $ to the last
    with pytest.raises(ValueError, match="no extra"):
        text_with_durations(row({}), frontend, 0.01)
    with pytest.raises(TextError):
        text_with_durations(row({"durations": [1]}, text="!!!"), frontend, 0.01)


def test_dataset_items_match_their_durations_and_bad_rows_are_listed(tmp_path):
    import numpy as np
    import soundfile as sf

    from processors.data.durations import PhonemeDurationMels, collate_phoneme_durations
    from processors.data.manifest import write_manifest
    from processors.spectrogram import MelConfig

    mel = MelConfig(mel_fmax=8000.0)  # 22.05 kHz, hop 256
    n = len(TextFrontend(add_blank=False)("A cat.")["ids"])
    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(3 * n * 256) * 0.05).astype(np.float32), 22050)
    good = ManifestEntry("good", str(wav), "s", "A cat.", 3 * n * 256 / 22050, 22050, {"durations": [3] * n})
    rows = [good, ManifestEntry("none", str(wav), "s", "A cat.", good.duration, 22050, {}),
            ManifestEntry("long", str(wav), "s", "A cat.", 99.0, 22050, {"durations": [3] * n})]
    data = PhonemeDurationMels(str(write_manifest(rows, tmp_path / "m.jsonl")), mel, max_seconds=20.0)
    assert len(data) == 1 and [i for i, _ in data.skipped] == ["none", "long"]
    ids, frames, log_mel = data[0]
    assert ids.shape == frames.shape == (n,) and log_mel.shape == (80, 3 * n) and frames.sum() == 3 * n
    batch = collate_phoneme_durations([data[0], data[0]])
    assert batch["mel"].shape == (2, 80, 3 * n) and batch["lengths"].tolist() == [n, n]
    with pytest.raises(ValueError, match="no usable row"):
        PhonemeDurationMels(str(write_manifest(rows[1:], tmp_path / "bad.jsonl")), mel, max_seconds=20.0)
    aligning = PhonemeDurationMels(str(tmp_path / "m.jsonl"), mel, max_seconds=20.0, need_durations=False)
    assert len(aligning) == 2 and aligning[1][1] is None and aligning[1][2].shape == (80, 3 * n)
    assert collate_phoneme_durations([aligning[0], aligning[1]])["frames"] is None  # the model aligns them all
    # log-mels are kept while the cache has room, computed again past it (same values either way)
    assert data[0][2] is data[0][2] and len(data._cache) == 1
    uncached = PhonemeDurationMels(str(tmp_path / "m.jsonl"), mel, max_seconds=20.0, cache_megabytes=0)
    assert torch.equal(uncached[0][2], log_mel) and uncached[0][2] is not uncached[0][2] and not uncached._cache
