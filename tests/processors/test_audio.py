"""processors.audio: loading any format to mono float32, atomic saving, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from processors.audio import AudioError, load_audio, peak_normalize, rms_normalize, save_audio
from tests.helpers import MINI_CORPUS

LJ = MINI_CORPUS / "ljspeech" / "LJ001-0001.wav"
REF = MINI_CORPUS / "hierspeechpp_examples" / "reference_1.wav"


def test_real_clip_resampled_to_16k():
    native, sr = sf.read(str(LJ), dtype="float32")
    wav = load_audio(LJ, 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - round(len(native) * 16000 / sr)) <= 1
    # Band-limited speech survives resampling: same energy within a few percent.
    assert np.sqrt(np.mean(wav**2)) == pytest.approx(np.sqrt(np.mean(native**2)), rel=0.05)


def test_native_rate_is_pcm16_over_32768():
    raw, _ = sf.read(str(REF), dtype="int16")
    wav = load_audio(REF, 16000)
    np.testing.assert_array_equal(wav, raw.astype(np.float32) / 32768.0)


def test_stereo_24bit_48k_to_mono(tmp_path):
    ref = load_audio(REF, 16000)[:16000]
    stereo = np.stack([ref, 0.5 * ref], axis=1)
    path = tmp_path / "stereo.flac"
    sf.write(str(path), stereo, 16000, subtype="PCM_24")
    mono = load_audio(path, 16000)
    np.testing.assert_allclose(mono, 0.75 * ref, atol=1e-4)
    both = load_audio(path, 48000, mono=False)
    assert both.shape == (2, 48000)


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "nan", "short"])
def test_errors_name_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" * 3)
    elif kind == "nan":
        sf.write(str(path), np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), 16000, subtype="FLOAT")
    elif kind == "short":
        sf.write(str(path), np.zeros(80, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000, min_duration=0.1)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert {"missing": "not found", "empty": "empty", "corrupt": "corrupt", "nan": "NaN", "short": "too short"}[kind] in message


def test_save_is_atomic_and_roundtrips(tmp_path):
    wav = load_audio(REF, 16000)
    out = save_audio(tmp_path / "sub" / "x.wav", wav, 16000)
    assert [p.name for p in out.parent.iterdir()] == ["x.wav"]  # no temp file left behind
    np.testing.assert_array_equal(load_audio(out, 16000), wav)
    with pytest.raises(AudioError):
        save_audio(tmp_path / "bad.wav", np.array([np.inf, 0.0], dtype=np.float32), 16000)
    assert not (tmp_path / "bad.wav").exists()


def test_level_helpers():
    wav = load_audio(REF, 16000)
    assert np.max(np.abs(peak_normalize(wav, 0.5))) == pytest.approx(0.5, rel=1e-6)
    level = rms_normalize(wav, -26.0)
    assert 20 * np.log10(np.sqrt(np.mean(level.astype(np.float64) ** 2))) == pytest.approx(-26.0, abs=0.01)
    silent = np.zeros(100, dtype=np.float32)
    assert np.array_equal(peak_normalize(silent), silent) and np.array_equal(rms_normalize(silent), silent)
