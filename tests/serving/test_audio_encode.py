"""Response encoding at rates a codec does not take: a fine-tuned voice that plays faster than its base voice
speaks at e.g. 27866 Hz, which WAV and FLAC store as is but MP3 and Opus do not (libsndfile refuses them)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from models.base.tasks import Audio
from serving.audio import available_formats, codec_rate, encode


def test_codec_rate_is_the_lowest_the_codec_takes_at_or_above():
    assert codec_rate("mp3", 27866) == 32000 and codec_rate("opus", 27866) == 48000
    assert codec_rate("mp3", 22050) == 22050 and codec_rate("opus", 24000) == 24000
    assert codec_rate("mp3", 96000) == 48000  # above every rate: the highest
    assert codec_rate("wav", 27866) == 27866 and codec_rate("flac", 11111) == 11111


@pytest.mark.parametrize("fmt", ["mp3", "opus", "wav"])
def test_a_tone_at_an_odd_rate_comes_back_at_its_pitch(fmt):
    if fmt not in available_formats():
        pytest.skip(f"this libsndfile build writes no {fmt}")
    rate = 27866
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    data, _, written = encode(Audio(tone, rate), fmt)
    assert written == codec_rate(fmt, rate)
    decoded, decoded_rate = sf.read(io.BytesIO(data), dtype="float32")
    assert decoded_rate == written and abs(decoded.size / decoded_rate - 1.0) < 0.1
    middle = decoded[decoded_rate // 4: 3 * decoded_rate // 4]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    peak_hz = np.argmax(spectrum) * decoded_rate / middle.size
    assert abs(peak_hz - 440.0) < 4.0
    assert 0.3 < np.max(np.abs(middle)) < 0.7
