"""processors.spectrogram: batching with lengths, VITS mel against librosa, SpeechSR settings, torchaudio layout."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from processors.audio import load_audio
from processors.spectrogram import (
    HierSpeechLinearSpectrogram,
    HierSpeechLogMel,
    Spectrogram,
    VitsLinearSpectrogram,
    VitsMelSpectrogram,
    speechsr_mel,
)
from tests.helpers import MINI_CORPUS


def _two_clips(sr: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    a = torch.from_numpy(load_audio(MINI_CORPUS / "vctk" / "p225" / "p225_003.wav", sr)[: sr])
    b = torch.from_numpy(load_audio(MINI_CORPUS / "ljspeech" / "LJ001-0002.wav", sr)[: int(0.63 * sr) + 7])
    batch = torch.zeros(2, a.numel())
    batch[0], batch[1, : b.numel()] = a, b
    return batch, torch.tensor([a.numel(), b.numel()]), [a, b]


@pytest.mark.parametrize(
    "make",
    [HierSpeechLogMel, HierSpeechLinearSpectrogram, VitsLinearSpectrogram, lambda: VitsMelSpectrogram(16000)],
)
def test_batched_with_lengths_equals_single_items(make):
    module = make()
    batch, lengths, items = _two_clips(16000)
    out, frames = module(batch, lengths)
    for b, item in enumerate(items):
        alone = module(item.unsqueeze(0))[0]
        assert frames[b].item() == alone.size(-1)
        torch.testing.assert_close(out[b, :, : frames[b]], alone, rtol=0, atol=1e-4)
        assert out[b, :, frames[b]:].abs().sum().item() == 0.0  # padded frames are zeroed
    torch.testing.assert_close(module(batch.unsqueeze(1)), module(batch))  # (B, 1, T) input accepted


def test_vits_mel_matches_independent_librosa_float64():
    wav = load_audio(MINI_CORPUS / "ljspeech" / "LJ001-0001.wav", 22050)[:22050]
    module = VitsMelSpectrogram(22050, 1024, 256, 1024, 80, 0.0, None)
    got = module(torch.from_numpy(wav).unsqueeze(0))[0].numpy()
    x = np.pad(wav.astype(np.float64), (384, 384), mode="reflect")
    stft = librosa.stft(x, n_fft=1024, hop_length=256, win_length=1024, window="hann", center=False)
    mag = np.sqrt(np.abs(stft) ** 2 + 1e-6)
    ref = np.log(np.maximum(librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80) @ mag, 1e-5))
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-3


@pytest.mark.parametrize("sr,n_fft,hop,n_mels", [(24000, 960, 240, 100), (48000, 1280, 320, 128)])
def test_speechsr_mel_settings(sr, n_fft, hop, n_mels):
    module = speechsr_mel(sr)
    wav = torch.from_numpy(load_audio(MINI_CORPUS / "hierspeechpp_examples" / "reference_1.wav", sr)[: sr // 2])
    out = module(wav)
    assert out.shape == (1, n_mels, (wav.numel() + 2 * ((n_fft - hop) // 2) - n_fft) // hop + 1)
    # fmax = sr/2: the top filter has weight right below Nyquist.
    assert module.mel_basis[-1, -3:].sum() > 0
    with pytest.raises(ValueError, match="22050"):
        speechsr_mel(22050)


def test_torchaudio_style_spectrogram_layout():
    spec = Spectrogram(512, 128, power=None, normalized=True, center=False)
    assert list(spec.state_dict()) == ["window"]  # same key as torchaudio (MS-STFT discriminators)
    x = torch.randn(2, 4000)
    out = spec(x)
    assert out.is_complex() and out.shape == (2, 257, (4000 - 512) // 128 + 1)
    ref = torch.stft(x, 512, 128, window=torch.hann_window(512), center=False, return_complex=True)
    torch.testing.assert_close(out, ref / torch.hann_window(512).pow(2).sum().sqrt())
    assert list(HierSpeechLogMel().state_dict()) == []  # front ends add nothing to model checkpoints


def test_too_short_for_reflect_padding_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        HierSpeechLogMel()(torch.zeros(1, 300))
