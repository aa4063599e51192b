"""EnCodec through transformers as a frozen codec (tiny random config: no hub), and the codes extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from processors.codec import CodecError, EncodecCodec, extract_codec_codes, load_codes
from processors.data.manifest import ManifestEntry
from tests.helpers import MINI_CORPUS


@pytest.fixture(scope="module")
def codec():
    torch.set_num_threads(1)
    return EncodecCodec.load("tiny-random")


def test_tiny_codec_layout_and_round_trip(codec):
    assert (codec.sample_rate, codec.frame_rate, codec.num_quantizers, codec.codebook_size) == (24000, 75.0, 8, 1024)
    assert all(not p.requires_grad for p in codec.model.parameters()) and not codec.model.training
    t = np.arange(24000) / 24000
    wav = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + t)) * (0.2 + t)).astype(np.float32)
    codes = codec.encode(wav, 24000)
    assert codes.shape == (75, 8) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < 1024
    assert len({tuple(row) for row in codes[:, :2].tolist()}) > 10  # codes follow the signal
    # 16 kHz input is resampled to 24 kHz first: same frame count for the same duration
    assert codec.encode(wav[::3].copy(), 8000).shape == (75, 8)
    audio = codec.decode(codes)
    assert audio.shape == (24000,) and audio.dtype == np.float32 and np.isfinite(audio).all()


def test_offline_hub_id_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CodecError) as err:
        EncodecCodec.load("facebook/encodec_24khz_not_cached_here")
    assert "\n" not in str(err.value) and "encodec_24khz_not_cached_here" in str(err.value)


def test_extract_codes_resumable_sharded_and_bad_items(codec, tmp_path):
    wavs = sorted((MINI_CORPUS / "ljspeech").glob("*.wav"))[:2]
    entries = [ManifestEntry(w.stem, str(w), "lj", "", 1.0, 22050) for w in wavs]
    entries.append(ManifestEntry("missing", str(tmp_path / "nope.wav"), "lj", "", 1.0, 22050))
    first = extract_codec_codes(entries, tmp_path, codec, shard=0, num_shards=2)
    second = extract_codec_codes(entries, tmp_path, codec, shard=1, num_shards=2)
    assert first.done == [entries[0].id] and second.done == [entries[1].id]
    assert "missing" in first.bad and (tmp_path / "bad_items.tsv").read_text().startswith("missing\t")
    stored = torch.load(tmp_path / "codes" / f"{entries[0].id}.pt", weights_only=True)
    assert stored.dtype == torch.int16 and stored.shape[1] == 8
    assert torch.equal(load_codes(tmp_path, entries[0].id), codec.encode(*_read(entries[0].path, codec)))
    again = extract_codec_codes(entries, tmp_path, codec)
    assert sorted(again.skipped) == sorted(e.id for e in entries[:2]) and not again.done


def _read(path, codec):
    from processors.audio import load_audio

    return load_audio(path, codec.sample_rate), codec.sample_rate
