"""modules/dit_flow.py and modules/style_encoder.py: names, invertibility and padding behaviour.

Official-number parity lives in tests/models/hierspeechpp/test_synth_parity.py.
"""

import pytest
import torch

from modules.dit_flow import BiTFlow
from modules.style_encoder import StyleEncoder


def _randomise(module: torch.nn.Module) -> None:
    # The DiT init zeroes the adaLN and post layers (identity flow); redraw so the test can fail.
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.2)


def _padded_batch():
    torch.manual_seed(0)
    lengths = torch.tensor([13, 9, 5])
    x = torch.randn(3, 8, 13)  # padded frames hold non-zero values on purpose
    mask = (torch.arange(13)[None] < lengths[:, None]).float().unsqueeze(1)
    g = torch.randn(3, 16, 1)
    return x, mask, lengths, g


def test_bitflow_checkpoint_names():
    flow = BiTFlow(8, 12, 5, n_layers=2, n_flows=4, gin_channels=16, n_heads=4)
    sd = flow.state_dict()
    assert {"cond_block.0.weight", "cond_block.2.bias", "flows.6.post.weight", "flows.0.pre.bias"} <= set(sd)
    for name in ("attn.qkv.weight", "attn.proj.bias", "mlp.fc1.weight", "mlp.fc2.weight", "adaLN_modulation.1.weight"):
        assert f"flows.2.enc_block.1.{name}" in sd
    assert sd["flows.0.enc_block.0.mlp.fc1.weight"].shape == (48, 12, 5)
    assert sd["cond_block.0.weight"].shape == (48, 16)
    assert not any(k.startswith(("flows.1.", "flows.3.")) for k in sd)


def test_bitflow_inverts_and_zeroes_padding():
    flow = BiTFlow(8, 12, 5, n_layers=2, gin_channels=16).eval()
    _randomise(flow)
    x, mask, _, g = _padded_batch()
    with torch.no_grad():
        y = flow(x, mask, g)
        back = flow(y, mask, g, reverse=True)
    assert float((y - x * mask).abs().max()) > 1e-2  # not an identity
    assert torch.allclose(back, x * mask, atol=1e-5)


def test_masked_attention_makes_batch_equal_single_item():
    flow = BiTFlow(8, 12, 5, n_layers=2, gin_channels=16).eval()
    _randomise(flow)
    x, mask, lengths, g = _padded_batch()
    with torch.no_grad():
        batched = flow(x, mask, g, reverse=True)
        for b in range(3):
            n = int(lengths[b])
            alone = flow(x[b:b + 1, :, :n], torch.ones(1, 1, n), g[b:b + 1], reverse=True)
            assert torch.allclose(batched[b:b + 1, :, :n], alone, atol=1e-5), b
        # The official unmasked attention leaks padded frames into the shorter items.
        flow.set_leaky_padding(True)
        leaky = flow(x, mask, g, reverse=True)
    n = int(lengths[2])
    assert float((leaky[2, :, :n] - batched[2, :, :n]).abs().max()) > 1e-3
    assert torch.allclose(leaky[0], batched[0], atol=1e-5)  # the unpadded item is unaffected


def test_style_encoder_masked_mean_and_leak_switch():
    enc = StyleEncoder(in_dim=10, hidden_dim=16, out_dim=8).eval()
    torch.manual_seed(0)
    mel = torch.randn(2, 10, 12)
    mask = torch.ones(2, 1, 12)
    mask[1, :, 7:] = 0
    with torch.no_grad():
        style = enc(mel, mask)
        alone = enc(mel[1:, :, :7], torch.ones(1, 1, 7))
        assert style.shape == (2, 8)
        assert torch.allclose(style[1:], alone, atol=1e-5)
        enc.leaky_padding = True
        leaky = enc(mel, mask)
    assert torch.allclose(leaky[0], style[0], atol=1e-6)
    assert float((leaky[1] - style[1]).abs().max()) > 1e-3
    assert set(enc.state_dict()) >= {"spectral.0.weight", "spectral.3.weight", "temporal.1.conv1.weight",
                                     "slf_attn.conv_o.weight", "fc.bias"}


@pytest.mark.parametrize("per_head", [True, False])
def test_attention_inference_paths_equal_the_explicit_one(per_head, monkeypatch):
    # inference takes oneDNN's per-head products (CPU float32 with oneDNN) or else torch's fused attention;
    # training (grad) keeps the explicit softmax(q k^T) v
    import modules.dit_flow as dit_flow
    from modules.dit_flow import SelfAttention

    if per_head and not dit_flow.onednn_available():
        pytest.skip("this torch build has no oneDNN linear op: the per-head path is never taken")
    if not per_head:
        monkeypatch.setattr(dit_flow, "onednn_available", lambda: False)
    calls = []
    original = SelfAttention._attend_per_head
    monkeypatch.setattr(SelfAttention, "_attend_per_head", lambda self, *a: calls.append(1) or original(self, *a))
    torch.manual_seed(2)
    attention = SelfAttention(16, n_heads=4)
    x = torch.randn(2, 11, 16)
    key_mask = torch.arange(11)[None] < torch.tensor([11, 6])[:, None]
    for mask in (None, key_mask):
        with torch.enable_grad():
            explicit = attention(x, mask)
        with torch.no_grad():
            fast = attention(x, mask)
        assert explicit.requires_grad and not fast.requires_grad
        torch.testing.assert_close(fast, explicit.detach(), rtol=0, atol=1e-6)
    with torch.no_grad():
        assert not torch.allclose(attention(x, key_mask)[1], attention(x, None)[1])  # the mask matters
    assert bool(calls) == per_head
