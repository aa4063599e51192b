"""VITS behaviour: training pass, batching, folding, errors (tiny random model)."""

import pytest
import torch

from models.tts.vits.config import VITSConfig
from models.tts.vits.model import VITS


def _model(n_speakers=3, use_sdp=True):
    torch.manual_seed(0)
    cfg = VITSConfig(inter_channels=8, hidden_channels=8, filter_channels=16, n_layers=1, resblock_kernel_sizes=[3],
                     resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[8, 4], upsample_initial_channel=16,
                     upsample_kernel_sizes=[16, 8], n_speakers=n_speakers, gin_channels=4, spec_channels=33,
                     segment_frames=4, use_sdp=use_sdp)
    return VITS.from_config(cfg)


@pytest.mark.parametrize("use_sdp", [True, False])
def test_training_forward_shapes_alignment_and_gradients(use_sdp):
    model = _model(use_sdp=use_sdp).train()
    x = torch.randint(1, 178, (2, 7))
    x_lengths = torch.tensor([7, 5])
    y = torch.rand(2, 33, 20)
    y_lengths = torch.tensor([20, 14])
    out = model(x, x_lengths, y, y_lengths, sid=torch.tensor([0, 2]))
    assert out["wav"].shape == (2, 1, 4 * 32)
    attn = out["attn"]
    assert attn.shape == (2, 1, 20, 7)
    # Every valid frame belongs to one token; every valid token gets >= 1 frame; nothing in the padding.
    assert torch.equal(attn.sum(3)[:, 0], out["y_mask"][:, 0])
    assert bool((attn.sum(2)[1, 0, :5] >= 1).all()) and float(attn[1, 0, 14:].sum()) == 0.0
    assert out["l_length"].shape == (2,) and bool(torch.isfinite(out["l_length"]).all())
    assert bool((out["ids_slice"] + 4 <= y_lengths).all())
    (out["wav"].abs().mean() + out["l_length"].sum() + out["z_p"].pow(2).mean()).backward()
    assert model.enc_q.pre.weight.grad is not None and model.dp.proj.weight.grad is not None
    # Durations are trained on detached text states: the duration loss alone leaves enc_p untouched.
    model.zero_grad()
    model(x, x_lengths, y, y_lengths, sid=torch.tensor([0, 2]))["l_length"].sum().backward()
    assert model.enc_p.emb.weight.grad is None or float(model.enc_p.emb.weight.grad.abs().sum()) == 0.0


def test_infer_batch_equals_single_items_and_folding_keeps_numbers():
    model = _model().eval()
    x = torch.randint(1, 178, (2, 9))
    lengths = torch.tensor([9, 6])
    sid = torch.tensor([1, 2])
    both = model.infer(x, lengths, sid=sid, noise_scale=0.0, noise_scale_w=0.0)
    for b in range(2):
        alone = model.infer(x[b:b + 1, :lengths[b]], lengths[b:b + 1], sid=sid[b:b + 1], noise_scale=0.0, noise_scale_w=0.0)
        n = int(alone["lengths"][0])
        frames = n // model.hop_length
        assert int(both["lengths"][b]) == n
        # Latents agree item by item; the decoder is unmasked (as in the original), so only the longest item's
        # waveform is padding-independent — shorter items pick up conv_pre's bias from their padded frames.
        torch.testing.assert_close(both["z"][b:b + 1, :, :frames], alone["z"], rtol=1e-4, atol=1e-5)
        if b == 0:
            torch.testing.assert_close(both["wav"][b:b + 1, :, :n], alone["wav"], rtol=1e-4, atol=1e-5)
        per_item = model.infer(x, lengths, sid=sid, noise_scale=0.0, noise_scale_w=0.0, decode_per_item=True)
        torch.testing.assert_close(per_item["wav"][b:b + 1, :, :n], alone["wav"], rtol=1e-4, atol=1e-5)
        assert float(per_item["wav"][b, :, n:].abs().sum()) == 0.0
    ref = model.infer(x, lengths, sid=sid, noise_scale=0.0, noise_scale_w=0.0)["wav"]
    model.prepare_for_inference()
    torch.testing.assert_close(model.infer(x, lengths, sid=sid, noise_scale=0.0, noise_scale_w=0.0)["wav"], ref,
                               rtol=1e-4, atol=1e-5)
    slow = model.infer(x[:1], lengths[:1], sid=sid[:1], noise_scale=0.0, noise_scale_w=0.0, length_scale=2.0)
    assert int(slow["lengths"][0]) > int(both["lengths"][0])


def test_errors_name_the_culprit():
    model = _model().eval()
    x = torch.randint(1, 178, (1, 5))
    with pytest.raises(ValueError, match="speaker id"):
        model.infer(x, torch.tensor([5]))
    with pytest.raises(ValueError, match="out of range"):
        model.infer(x, torch.tensor([5]), sid=torch.tensor([3]))
    with pytest.raises(ValueError, match="symbol ids"):
        model.infer(torch.tensor([[200]]), torch.tensor([1]), sid=torch.tensor([0]))
    with pytest.raises(ValueError, match="multi-speaker"):
        _model(n_speakers=0).voice_conversion(torch.rand(1, 33, 5), torch.tensor([5]), 0, 1)
    with pytest.raises(ValueError, match="gin_channels"):
        VITSConfig(n_speakers=4, gin_channels=0)
