"""modules/discriminators: official key layouts (VITS, HierSpeech++, SpeechSR-24k/48k) and behaviour."""

import json

import pytest
import torch

from modules.discriminators import (
    DiscriminatorP,
    DiscriminatorR,
    DiscriminatorS,
    hierspeechpp_discriminator,
    hifigan_discriminator,
    speechsr_discriminator,
    vits_discriminator,
)
from tests.helpers import fixtures_dir


def _official_keys(relpath: str, entry: str):
    path = fixtures_dir() / relpath
    if not fixtures_dir().is_dir():
        pytest.skip(f"parity fixtures not found at {fixtures_dir()}")
    info = json.loads(path.read_text())[entry]
    return info


def _layout(module: torch.nn.Module):
    return [(k, list(v.shape)) for k, v in module.state_dict().items()]


@pytest.mark.parametrize(
    "relpath, entry, build",
    [
        ("vits/keys_full.json", "ljs_base_discriminator", lambda: vits_discriminator()),
        ("vits/keys_full.json", "vctk_base_discriminator", lambda: vits_discriminator()),
        ("hierspeechpp/keys_full.json", "synthesizer_discriminator", lambda: hierspeechpp_discriminator()),
        ("hierspeechpp/keys_full.json", "speechsr24k_discriminator", lambda: speechsr_discriminator(24000)),
        ("hierspeechpp/keys_full.json", "speechsr48k_discriminator", lambda: speechsr_discriminator(48000)),
    ],
)
def test_full_size_layout_equals_official(relpath, entry, build):
    info = _official_keys(relpath, entry)
    with torch.device("meta"):  # shapes only: no 40 M-parameter allocation
        disc = build()
    assert _layout(disc) == [(k, v) for k, v in info["keys"].items()]
    n_params = sum(p.numel() for p in disc.parameters())
    assert n_params == info["total_params"]
    buffers = [k for k, _ in disc.named_buffers()]
    assert buffers == info["buffer_keys"]


def test_stft_matches_torchaudio_normalisation_and_layout():
    torch.manual_seed(0)
    disc = DiscriminatorR((256, 64, 256))
    y = torch.randn(2, 1, 2000)
    spec = disc.spec_transform(y)
    # Reference: plain numpy-free DFT of the first frame with a periodic Hann window, divided by ||window||.
    n = torch.arange(256, dtype=torch.float64)
    window = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / 256)
    frame = y[0, 0, :256].double() * window
    k = torch.arange(129, dtype=torch.float64).unsqueeze(1)
    dft = (frame * torch.exp(-2j * torch.pi * k * n / 256)).sum(1) / window.pow(2).sum().sqrt()
    assert spec.shape == (2, 129, 1 + (2000 - 256) // 64)
    assert torch.allclose(spec[0, :, 0].to(torch.complex128), dft, atol=1e-5)
    logits, fmap = disc(y)
    assert len(fmap) == 6 and fmap[0].shape[:3] == (2, 32, spec.shape[-1])
    assert logits.shape[0] == 2
    with pytest.raises(ValueError, match="shorter than n_fft"):
        disc(torch.randn(1, 1, 100))


def test_period_fold_and_scale_discriminators():
    torch.manual_seed(0)
    y = torch.randn(2, 1, 1001)  # not a multiple of the period: reflect padding
    logits, fmap = DiscriminatorP(3)(y)
    assert fmap[0].shape[-1] == 3 and len(fmap) == 6
    assert logits.shape[0] == 2
    logits_s, fmap_s = DiscriminatorS()(y)
    assert len(fmap_s) == 7 and logits_s.shape[0] == 2
    sn = DiscriminatorS(use_spectral_norm=True)
    assert "convs.0.weight_orig" in sn.state_dict()


def test_combined_outputs_and_gradients():
    torch.manual_seed(0)
    disc = hifigan_discriminator(periods=(2, 3))
    y = torch.randn(1, 1, 4096)
    y_hat = torch.randn(1, 1, 4096, requires_grad=True)
    real, fake, fm_r, fm_g = disc(y, y_hat)
    assert len(real) == len(fake) == len(fm_r) == len(fm_g) == 5  # 2 periods + 3 scales
    sum(f.mean() for f in fake).backward()
    assert y_hat.grad is not None and float(y_hat.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="waveforms"):
        disc(y, y_hat[..., :100])
    with pytest.raises(ValueError, match="sample_rate"):
        speechsr_discriminator(16000)
