"""Lhotse's own tools on Echelon's shards: mel, F0 and SSL are TemporalArrays with their frame shift, so
``CutSet.from_shar`` -> ``cut.truncate`` -> ``load_custom`` / ``collate_custom_field`` keep them in step with the
audio (round(duration / frame_shift) steps, the same frames as the whole feature's); Echelon's ``cut_array`` reads
them back time last, the same as shards of the older plain-Array layout give."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet
from lhotse.array import Array, TemporalArray
from lhotse.dataset.collation import collate_audio, collate_custom_field

from bins.extract_features import main as extract_cli
from processors.data.manifest import read_manifest
from processors.data.shar import SharOptions, stored_features, write_shar
from processors.data.shar_reader import cut_array, iter_shar_cuts
from processors.features import build_extractor
from processors.features.base import FeatureExtractor
from processors.features.store import FEATURE_INFO, save_feature
from processors.features.ssl import SSLFeature
from processors.ssl import build_random_ssl
from tests.helpers import write_clip_manifest

HOP, RATE = 320, 16000


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 real 0.7 s clips written by Echelon's tool with mel and F0 (2 shards); the manifest beside them."""
    root = tmp_path_factory.mktemp("temporal")
    manifest = write_clip_manifest(root, 4, 0.7, labelled=True)
    assert extract_cli(["--manifest", str(manifest), "--out_dir", str(root / "out"), "--features", "mel", "f0",
                        "--format", "shar", "--shard_size", "2", "--audio_format", "wav"]) == 0
    return root


def _windows(cuts):
    """Each cut truncated to another window inside it (offsets and durations that are not whole frames, nor
    half frames: no tie to round)."""
    return [cut.truncate(offset=0.013 + 0.061 * i, duration=0.2 + 0.0937 * i) for i, cut in enumerate(cuts)]


def test_truncated_mel_and_f0_stay_in_step_with_the_audio(shards):
    cuts = CutSet.from_shar(in_dir=shards / "out/shar").to_eager()
    assert len(cuts) == 4
    record = json.loads((shards / "out/shards/shard.000000.json").read_text())
    assert record["layout"]["frame_shifts"] == {"mel": HOP / RATE, "f0": HOP / RATE / 4}
    extractors = {"mel": build_extractor("mel"), "f0": build_extractor("f0")}
    for cut, window in zip(cuts, _windows(cuts)):
        wav = cut.load_audio()[0]
        audio = window.load_audio()[0]
        assert len(audio) == round(window.duration * RATE)
        np.testing.assert_array_equal(audio, wav[round(window.start * RATE):][: len(audio)])
        for name, extractor in extractors.items():
            manifest = getattr(cut, name)
            assert isinstance(manifest, TemporalArray) and manifest.temporal_dim == 0
            assert manifest.frame_shift == extractor.frame_shift
            whole = cut.load_custom(name)  # time first: (T, n_mels) / (4T,)
            computed = extractor.extract(wav).numpy()  # Echelon's layout, time last
            np.testing.assert_allclose(np.moveaxis(whole, 0, -1), computed, rtol=1e-5, atol=1e-5)
            part = window.load_custom(name)
            first = math.floor(window.start / manifest.frame_shift + 0.5)
            assert part.shape[0] == math.floor(window.duration / manifest.frame_shift + 0.5)
            assert abs(part.shape[0] * manifest.frame_shift - len(audio) / RATE) <= manifest.frame_shift / 2 + 1e-9
            np.testing.assert_array_equal(part, whole[first : first + part.shape[0]])  # the window's own frames
            np.testing.assert_array_equal(cut_array(window, name), np.moveaxis(part, 0, -1))


def test_collate_custom_field_pads_the_windows_like_the_audio(shards):
    windows = CutSet.from_cuts(_windows(CutSet.from_shar(in_dir=shards / "out/shar").to_eager()))
    audio, audio_lens = collate_audio(windows)
    for name in ("mel", "f0"):
        shift = windows[0].custom[name].frame_shift
        batch, lens = collate_custom_field(windows, name, pad_value=-100.0)
        assert batch.shape[:2] == (len(windows), int(lens.max()))
        expected = torch.tensor([math.floor(n / RATE / shift + 0.5) for n in audio_lens.tolist()], dtype=torch.int32)
        assert torch.equal(lens, expected)
        for row, cut, n in zip(batch, windows, lens.tolist()):
            assert torch.equal(row[:n], torch.from_numpy(cut.load_custom(name)))
            assert bool((row[n:] == -100.0).all())
        if name == "mel":
            assert batch.shape[2] == 80


def test_ssl_features_are_temporal_too_and_old_plain_array_shards_read_alike(shards, tmp_path):
    """SSL (batched extractor, tiny random wav2vec 2.0) is stored as a TemporalArray as well; shards of the older
    layout (plain Arrays: a feature folder whose feature.json records no settings) give cut_array the same arrays."""
    ssl = SSLFeature(module=build_random_ssl(layer=2, num_layers=2, seed=0))
    out = tmp_path / "ssl"
    write_shar(read_manifest(shards / "items.jsonl"), out, [ssl], SharOptions(shard_size=3, audio_format="wav"))
    features = tmp_path / "features"
    new = {c.id: c for c in iter_shar_cuts({"cuts": sorted(map(str, (out / "shar").glob("cuts.*"))),
                                           "ssl": sorted(map(str, (out / "shar").glob("ssl.*")))})}
    for cut_id, cut in new.items():
        assert isinstance(cut.ssl, TemporalArray) and cut.ssl.frame_shift == HOP / RATE
        save_feature(features, "ssl", cut_id, torch.from_numpy(cut_array(cut, "ssl")))
    (features / "ssl" / FEATURE_INFO).write_text('{"name": "ssl", "dtype": "float32"}')  # no settings, no step
    old_dir = tmp_path / "old"
    write_shar(read_manifest(shards / "items.jsonl"), old_dir, stored_features(features, ["ssl"]),
               SharOptions(shard_size=3, audio_format="wav", audio_rate=RATE), features_dir=features)
    old = list(CutSet.from_shar(in_dir=old_dir / "shar"))
    assert sorted(c.id for c in old) == sorted(new)
    for cut in old:
        assert isinstance(cut.ssl, Array)
        array = cut_array(cut, "ssl")
        wav, _ = sf.read(str(shards / "audio" / f"{cut.id}.wav"), dtype="float32")
        assert array.shape[-1] == len(wav) // HOP and array.flags.c_contiguous
        np.testing.assert_array_equal(array, cut_array(new[cut.id], "ssl"))
        np.testing.assert_array_equal(np.moveaxis(new[cut.id].load_custom("ssl"), 0, -1), array)


def test_integer_codes_are_temporal_and_collate_as_int64(shards, tmp_path):
    """Codec-style integer codes ``(2, T)`` int16 (the test stand-in codec): time-first TemporalArray, truncated
    in step with the audio, collated as int64 (Lhotse's promotion), read back time last by cut_array."""
    from tests.processors.test_feature_codes import MuLawCodes

    write_shar(read_manifest(shards / "items.jsonl"), tmp_path / "codes", [MuLawCodes()],
               SharOptions(shard_size=4, audio_format="wav"))
    cuts = CutSet.from_shar(in_dir=tmp_path / "codes/shar").to_eager()
    windows = CutSet.from_cuts(_windows(cuts))
    for cut, window in zip(cuts, windows):
        whole, part = cut.load_custom("test_mulaw_codes"), window.load_custom("test_mulaw_codes")
        assert whole.dtype == np.int16 and whole.shape == (len(cut.load_audio()[0]) // HOP, 2)
        first = math.floor(window.start / (HOP / RATE) + 0.5)
        np.testing.assert_array_equal(part, whole[first : first + math.floor(window.duration * RATE / HOP + 0.5)])
        np.testing.assert_array_equal(cut_array(cut, "test_mulaw_codes"), whole.T)
    batch, lens = collate_custom_field(windows, "test_mulaw_codes", pad_value=-1)
    assert batch.dtype == torch.int64 and lens.tolist() == [len(w.load_custom("test_mulaw_codes")) for w in windows]


def test_frame_shift_comes_from_each_extractors_own_step():
    assert build_extractor("mel", {"hop_length": 256, "sample_rate": 22050}).frame_shift == 256 / 22050
    assert build_extractor("f0", {"hop_length": 256, "sample_rate": 22050}).frame_shift == 256 / 22050 / 4
    assert FeatureExtractor.frame_shift_of({"name": "x", "settings": {"sample_rate": 16000}}) is None
