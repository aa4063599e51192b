"""modules/wavenet.py and modules/transformer.py: checkpoint names, shapes and masking.

Numerical parity with the official code is checked in tests/models/hierspeechpp/test_synth_parity.py
(PosteriorSFEncoder exercises WaveNet, MelDecoder the transformer).
"""

import pytest
import torch

from modules.transformer import FFN, LayerNorm, MultiHeadAttention, RelPositionEncoder
from modules.wavenet import WaveNet


def test_wavenet_names_shapes_and_mask():
    torch.manual_seed(0)
    wn = WaveNet(8, 5, 1, 3, gin_channels=4).eval()
    keys = set(wn.state_dict())
    assert {"in_layers.2.weight_g", "in_layers.2.weight_v", "res_skip_layers.2.weight_v", "cond_layer.weight_g"} <= keys
    assert wn.state_dict()["res_skip_layers.2.weight_v"].shape == (8, 8, 1)
    assert wn.state_dict()["cond_layer.weight_v"].shape == (2 * 8 * 3, 4, 1)
    x = torch.randn(2, 8, 11)
    mask = torch.ones(2, 1, 11)
    mask[1, :, 7:] = 0
    y = wn(x * mask, mask, torch.randn(2, 4, 1))
    assert y.shape == (2, 8, 11)
    assert float(y[1, :, 7:].abs().max()) == 0.0
    # A padded item equals the same item run alone on its valid frames.
    g = torch.randn(1, 4, 1)
    full = wn(x[1:] * mask[1:], mask[1:], g)[..., :7]
    alone = wn(x[1:, :, :7], torch.ones(1, 1, 7), g)
    assert torch.allclose(full, alone, atol=1e-6)


def test_layernorm_over_channels():
    ln = LayerNorm(6)
    x = torch.randn(3, 6, 4)
    y = ln(x)
    assert torch.allclose(y.mean(1), torch.zeros(3, 4), atol=1e-5)
    assert set(ln.state_dict()) == {"gamma", "beta"}


def test_relative_attention_names_and_padding_invariance():
    torch.manual_seed(0)
    enc = RelPositionEncoder(8, 16, 2, 2, kernel_size=3, p_dropout=0.1, window_size=4).eval()
    sd = enc.state_dict()
    assert sd["attn_layers.0.emb_rel_k"].shape == (1, 9, 4)
    assert {"norm_layers_1.1.gamma", "ffn_layers.1.conv_2.weight", "attn_layers.1.conv_o.bias"} <= set(sd)
    x = torch.randn(2, 8, 12)
    mask = torch.ones(2, 1, 12)
    mask[1, :, 9:] = 0
    y = enc(x, mask)
    alone = enc(x[1:, :, :9], torch.ones(1, 1, 9))
    assert torch.allclose(y[1:, :, :9], alone, atol=1e-5)
    assert float(y[1, :, 9:].abs().max()) == 0.0
    # Sequences longer than the window (pads the embedding table) and shorter (slices it).
    assert enc(torch.randn(1, 8, 3), torch.ones(1, 1, 3)).shape == (1, 8, 3)


def test_attention_cross_and_proximal_init():
    attn = MultiHeadAttention(8, 6, 2, proximal_init=True, proximal_bias=False)
    assert torch.equal(attn.conv_k.weight, attn.conv_q.weight)
    out = attn(torch.randn(2, 8, 5), torch.randn(2, 8, 7))
    assert out.shape == (2, 6, 5)
    prox = MultiHeadAttention(8, 8, 2, proximal_bias=True)
    assert prox(torch.randn(1, 8, 5), torch.randn(1, 8, 5)).shape == (1, 8, 5)


def test_ffn_masks_and_activation():
    ffn = FFN(4, 5, 8, 3, activation="gelu")
    mask = torch.ones(1, 1, 6)
    mask[..., 4:] = 0
    y = ffn(torch.randn(1, 4, 6), mask)
    assert y.shape == (1, 5, 6) and float(y[..., 4:].abs().max()) == 0.0


@pytest.mark.parametrize("heads_share, block_length", [(True, None), (False, None), (True, 3)])
@pytest.mark.parametrize("length", [1, 4, 5, 9, 40])
def test_relative_attention_band_form_equals_the_reference_form(heads_share, block_length, length):
    # inference adds the 2w+1 in-window offsets straight onto the logits' diagonals; training keeps VITS's
    # zero-padded table and pad-and-reshape skews: same sums for lengths below, at and above the window
    torch.manual_seed(length)
    attention = MultiHeadAttention(12, 12, 3, window_size=4, heads_share=heads_share,
                                   block_length=block_length).eval()  # Glow-TTS bands its keys too
    x = torch.randn(2, 12, length)
    mask = torch.ones(2, 1, length, length)
    mask[1, :, :, length // 2 + 1:] = 0
    mask[1, :, length // 2 + 1:, :] = 0
    with torch.enable_grad():
        reference = attention(x, x, mask)
    with torch.no_grad():
        band = attention(x, x, mask)
    assert reference.requires_grad and not band.requires_grad
    torch.testing.assert_close(band, reference.detach(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        attention.emb_rel_v.zero_()
        attention.emb_rel_k.zero_()
        without = attention(x, x, mask)
    if length > 1:
        assert not torch.allclose(band, without)  # the relative terms take part
