"""modules/vocoders/hifigan.py and modules/posterior_encoder.py: names, shapes, masking, noise injection."""

import pytest
import torch

from modules.posterior_encoder import PosteriorEncoder
from modules.vocoders.hifigan import HiFiGANGenerator, ResBlock1, ResBlock2, make_resblock


def test_generator_layout_lengths_and_condition():
    torch.manual_seed(0)
    gen = HiFiGANGenerator(6, "1", [3, 5], [[1, 3, 5], [1, 3, 5]], [4, 2], 16, [8, 4], gin_channels=3).eval()
    keys = list(gen.state_dict())
    assert keys[0] == "conv_pre.weight" and "ups.1.weight_g" in keys and "resblocks.3.convs2.2.weight_v" in keys
    assert keys[-2:] == ["cond.weight", "cond.bias"]
    assert "conv_post.bias" not in keys
    assert gen.state_dict()["ups.0.weight_g"].shape == (16, 1, 1)  # ConvTranspose: g over input channels
    with torch.no_grad():
        x = torch.randn(2, 6, 10)
        g = torch.randn(2, 3, 1)
        wav = gen(x, g)
        assert wav.shape == (2, 1, 80) and float(wav.abs().max()) < 1.0
        assert not torch.allclose(wav, gen(x, torch.zeros_like(g)))
        before = gen(x, g)
        assert gen.fold_weight_norm() > 0
        torch.testing.assert_close(gen(x, g), before, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="gin_channels"):
        HiFiGANGenerator(6, "2", [3], [[1, 3]], [2], 8, [4])(torch.randn(1, 6, 4), torch.randn(1, 3, 1))


def test_original_hifigan_variant_and_resblocks():
    gen = HiFiGANGenerator(80, "2", [3, 5], [[1, 2], [2, 6]], [8, 8], 32, [16, 16], weight_norm_io=True, post_bias=True)
    sd = gen.state_dict()
    assert {"conv_pre.weight_g", "conv_post.weight_v", "conv_post.bias", "resblocks.1.convs.1.weight_g"} <= set(sd)
    assert isinstance(make_resblock("1", 4, 3, [1, 3, 5]), ResBlock1)
    with pytest.raises(ValueError, match="resblock type"):
        make_resblock("3", 4, 3, [1])
    mask = torch.ones(1, 1, 12)
    mask[..., 8:] = 0
    for block in (ResBlock1(4, 3, [1, 3, 5]), ResBlock2(4, 3, [1, 3])):
        with torch.no_grad():
            y = block(torch.randn(1, 4, 12), mask)
        assert float(y[..., 8:].abs().max()) == 0.0


def test_posterior_encoder_noise_and_mask():
    torch.manual_seed(0)
    enc = PosteriorEncoder(10, 4, 8, 5, 1, 3, gin_channels=2).eval()
    assert {"pre.weight", "enc.in_layers.2.weight_v", "enc.cond_layer.weight_g", "proj.bias"} <= set(enc.state_dict())
    x = torch.randn(2, 10, 9)
    lengths = torch.tensor([9, 6])
    g = torch.randn(2, 2, 1)
    noise = torch.randn(2, 4, 9)
    with torch.no_grad():
        z, m, logs, mask = enc(x, lengths, g=g, noise=noise)
        torch.testing.assert_close(z, (m + noise * torch.exp(logs)) * mask)
        z0, m0, _, _ = enc(x, lengths, g=g, noise_scale=0.0)
    torch.testing.assert_close(z0, m0 * mask)
    assert float(z[1, :, 6:].abs().max()) == 0.0 and mask.shape == (2, 1, 9)
    with pytest.raises(ValueError, match="expected input"):
        enc(torch.randn(1, 3, 4), torch.tensor([4]))
    with pytest.raises(ValueError, match="noise must be"):
        enc(x, lengths, noise=torch.randn(1, 4, 9))


def test_upsamplers_run_in_float32_under_autocast():
    """A transposed convolution's bf16-rounded kernel repeats once per input sample: a hum at the frame rate.
    Under autocast the upsamplers take and give float32; the rest still runs in bfloat16."""
    gen = HiFiGANGenerator(8, "1", [3], [[1, 3, 5]], [4, 4], 16, [8, 8])
    x = torch.randn(1, 8, 20)
    dtypes = {}
    for name in ("ups.0", "ups.1", "resblocks.0.convs1.0", "conv_post"):
        gen.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gen(x)
    assert dtypes["ups.0"] == dtypes["ups.1"] == torch.float32
    assert dtypes["resblocks.0.convs1.0"] == dtypes["conv_post"] == out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), gen(x), atol=0.05)  # the same generator, to bfloat16's rounding
