"""Griffin-Lim turns a VITS log-mel back into a waveform whose log-mel matches it (processors/griffin_lim.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from processors.audio import load_audio
from processors.griffin_lim import griffin_lim
from processors.spectrogram import VitsMelSpectrogram
from tests.helpers import MINI_CORPUS

SR, N_FFT, HOP = 22050, 1024, 256


def test_inverted_mel_matches_and_keeps_the_frame_count():
    clip = sorted((MINI_CORPUS / "ljspeech").rglob("*.wav"))[0]
    wav = load_audio(clip, SR)[: 2 * SR]  # two seconds of real speech
    mel_of = VitsMelSpectrogram(SR, N_FFT, HOP, N_FFT, 80, 0.0, 8000.0)
    log_mel = mel_of(torch.from_numpy(wav).unsqueeze(0))[0]
    out = griffin_lim(log_mel, SR, N_FFT, HOP, N_FFT, 0.0, 8000.0, n_iter=32)
    assert out.dtype == np.float32 and out.shape == (log_mel.shape[1] * HOP,)
    again = mel_of(torch.from_numpy(out).unsqueeze(0))[0]
    inner = slice(4, -4)  # edge frames see the zero padding
    loud = log_mel[:, inner] > -6  # speech, not the floor of silence
    error = again[:, inner] - log_mel[:, inner]
    assert error[loud].abs().mean() < 0.4 and abs(error[loud].mean()) < 0.1, error  # measured 0.28 and -0.01
    silence = griffin_lim(torch.full((80, 10), -11.5), SR, N_FFT, HOP, N_FFT, 0.0, 8000.0, n_iter=4)
    assert np.abs(silence).max() < 1e-3
    with pytest.raises(ValueError, match="frames"):
        griffin_lim(torch.zeros(80, 0), SR, N_FFT, HOP, N_FFT)
