"""WaveGrad 2 model pieces on tiny configs: shapes, masking, upsampling numerics, zoneout, window, sampling, learning."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.tts.wavegrad2.config import WaveGrad2Config, from_maum_config
from models.tts.wavegrad2.model import WaveGrad2
from modules.diffusion import NoiseSchedule, named_schedule, sample_training_noise_level
from modules.gaussian_upsampling import gaussian_upsample
from modules.wavegrad import WaveGradDecoder
from modules.zoneout_lstm import ZoneoutLSTM

torch.set_num_threads(1)
HOP = 30
RATE = 2400  # 80 frames per second, as the paper's 24 kHz / 300


def tiny_config(**changes) -> WaveGrad2Config:
    base = dict(
        n_symbols=10, encoder_channels=16, encoder_depth=2, encoder_dropout=0.0, encoder_zoneout=0.0, n_speakers=0,
        duration_lstm_channels=8, range_lstm_channels=8, sample_rate=RATE, window_frames=8, factors=[5, 3, 2],
        up_preconv_channels=16, up_channels=[16, 12, 8], up_dilations=[[1, 2, 4, 8], [1, 2, 1, 2], [1, 2, 1, 2]],
        down_preconv_channels=4, down_channels=[8, 12], down_dilations=[[1, 2, 4], [1, 2, 4]],
    )  # fmt: skip
    base.update(changes)
    return WaveGrad2Config(**base)


def tone_batch(text, durations):
    """Each token a sine of its own pitch for its frames: an aligned synthetic corpus."""
    clips = []
    for ids, durs in zip(text.tolist(), durations.long().tolist()):
        parts = [0.5 * torch.sin(2 * math.pi * (100 + 70 * i) * torch.arange(d * HOP) / RATE) for i, d in zip(ids, durs)]
        clips.append(torch.cat(parts))
    wav = torch.zeros(len(clips), max(c.numel() for c in clips))
    for b, c in enumerate(clips):
        wav[b, : c.numel()] = c
    return wav


def test_shapes_and_lengths():
    torch.manual_seed(0)
    model = WaveGrad2.from_config(tiny_config(n_speakers=3, speaker_channels=4)).eval()
    text = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]])
    lengths = torch.tensor([5, 3])
    durations = torch.tensor([[2.0, 3, 1, 4, 2], [3, 0, 4, 0, 0]])
    out = model(text, lengths, durations, tone_batch(text, durations), torch.tensor([[0.5], [0.9]]),
                speakers=torch.tensor([0, 2]))
    assert out["hidden"].shape == (2, 20, 12) and out["weights"].shape == (2, 5, 12)
    assert out["frame_lengths"].tolist() == [12, 7]
    assert out["eps_pred"].shape == out["eps"].shape == (2, 8 * HOP)
    assert out["hidden_window"].shape == (2, 20, 8)
    assert torch.all(out["hidden"][1, :, 7:] == 0), "frames past an item's length must be zero"
    assert torch.allclose(out["weights"][1, :, :7].sum(0), torch.ones(7), atol=1e-6)


def test_window_lies_inside_valid_frames_and_short_items_are_masked():
    model = WaveGrad2.from_config(tiny_config())
    lengths = torch.tensor([8, 9, 30, 5])
    for u in (0.0, 0.5, 0.9999):
        starts = model.window_starts(lengths, torch.full((4,), u))
        assert bool(((starts + 8 <= lengths) | (starts == 0)).all()) and bool((starts >= 0).all())
    assert model.window_starts(lengths, torch.full((4,), 0.9999)).tolist() == [0, 1, 22, 0]
    text = torch.tensor([[1, 2]])
    durations = torch.tensor([[2.0, 3.0]])  # 5 frames < window of 8
    out = model(text, torch.tensor([2]), durations, tone_batch(text, durations), torch.tensor([[0.7]]))
    assert int(out["sample_mask"].sum()) == 5 * HOP and torch.all(out["wav_window"][:, 5 * HOP:] == 0)


def test_batched_item_equals_the_item_alone():
    torch.manual_seed(1)
    model = WaveGrad2.from_config(tiny_config()).eval()
    text = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    schedule = NoiseSchedule.from_betas(named_schedule("fast_6"))
    durations = torch.tensor([[2.0, 1, 3, 2, 2, 1], [2, 2, 3, 0, 0, 0]])
    both = model.infer(text, lengths, schedule, generator=torch.Generator().manual_seed(3), durations=durations)
    alone = model.infer(text[1:, :3], lengths[1:], schedule, generator=torch.Generator().manual_seed(9),
                        durations=durations[1:, :3])
    h_both = model.hidden_from_text(text, lengths)
    h_alone = model.hidden_from_text(text[1:, :3], lengths[1:])
    assert torch.allclose(h_both["durations"][1, :3], h_alone["durations"][0])
    assert torch.allclose(h_both["hidden"][1, :, : int(h_alone["frame_lengths"][0])], h_alone["hidden"][0], atol=1e-6)
    first = model.infer(text[:1], lengths[:1], schedule, generator=torch.Generator().manual_seed(3),
                        durations=durations[:1])
    # item 0 draws first (batched matmuls may differ in the last bit)
    assert torch.allclose(both["wav"][0], first["wav"][0], atol=1e-4)
    assert alone["wav"].shape == (1, 7 * HOP)


def test_zero_duration_token_keeps_length_and_normalisation():
    memory = torch.randn(1, 4, 3)
    up, weights = gaussian_upsample(memory, torch.tensor([[2.0, 0.0, 3.0, 1.0]]), torch.ones(1, 4), 6)
    assert up.shape == (1, 6, 3) and torch.allclose(weights.sum(1), torch.ones(1, 6), atol=1e-6)
    assert float(weights[0, 1].max()) > 0  # a zero-length token still spreads (NAT)


def test_upsampling_is_safe_where_the_densities_underflow():
    memory = torch.randn(1, 2, 3)
    durations, sigma = torch.tensor([[2.0, 2.0]]), torch.full((1, 2), 0.05)
    _, weights = gaussian_upsample(memory, durations, sigma, 60)
    assert torch.isfinite(weights).all() and torch.allclose(weights.sum(1), torch.ones(1, 60), atol=1e-6)
    naive = torch.distributions.Normal(torch.tensor([1.0, 3.0]).view(1, 2, 1), 0.05).log_prob(torch.arange(60.0)).exp()
    assert float(naive.sum(1)[0, 40]) == 0.0  # the public formula leaves this frame with no weight at all
    assert torch.allclose(weights[0, :, 40], torch.tensor([0.0, 1.0]))


def test_frame_offset_shifts_by_one_frame():
    memory, durations, sigma = torch.randn(1, 3, 2), torch.tensor([[2.0, 3.0, 2.0]]), torch.tensor([[0.7, 1.0, 1.3]])
    _, zero_based = gaussian_upsample(memory, durations, sigma, 8, frame_offset=0.0)
    _, one_based = gaussian_upsample(memory, durations, sigma, 8, frame_offset=1.0)
    assert torch.allclose(one_based[..., :-1], zero_based[..., 1:], atol=1e-6)


def test_zoneout_lstm_matches_packed_lstm_and_is_identity_free_when_on():
    torch.manual_seed(2)
    lstm = ZoneoutLSTM(5, 4, num_layers=2, bidirectional=True, zoneout=0.0).eval()
    x, lengths = torch.randn(3, 7, 5), torch.tensor([4, 7, 2])
    fused = lstm(x, lengths)
    ref, _ = torch.nn.LSTM.forward(lstm, pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    ref, _ = pad_packed_sequence(ref, batch_first=True, total_length=7)
    assert torch.allclose(fused, ref, atol=1e-6)
    assert torch.allclose(lstm._zoneout_forward(x, lengths), ref, atol=1e-5)  # the loop, p = 0: same cell maths
    lstm.zoneout = 0.3
    evaluated = lstm(x, lengths)
    assert torch.equal(evaluated, lstm(x, lengths)) and not torch.allclose(evaluated, ref, atol=1e-3)
    assert torch.all(evaluated[2, 2:] == 0)
    lstm.train()
    assert not torch.equal(lstm(x, lengths), lstm(x, lengths))  # random masks while training


def test_other_factorisations_and_large_stages():
    for factors, blocks in (([4, 4, 2], 1), ([2, 2, 3, 5], 2), ([8], 1)):
        n = len(factors)
        dec = WaveGradDecoder(6, factors, 8, [8] * n, [[1, 2, 4, 8]] * n, 4, [6] * (n - 1), [[1, 2, 4]] * (n - 1),
                              blocks_per_stage=blocks)
        hop = math.prod(factors)
        assert dec(torch.randn(2, 5 * hop), torch.randn(2, 6, 5), torch.rand(2, 1)).shape == (2, 5 * hop)
    with pytest.raises(ValueError, match="waveform length"):
        dec(torch.randn(1, 41), torch.randn(1, 6, 5), torch.rand(1, 1))
    with pytest.raises(ValueError, match="down_channels"):
        WaveGradDecoder(6, [4, 4], 8, [8, 8], [[1, 2, 4, 8]] * 2, 4, [6, 6], [[1, 2, 4]] * 2)


def test_large_stages_use_maum_large_key_names():
    """maum-ai's nn_large checkpoints: every stage = basic block + same-resolution block (names from its code)."""
    dec = WaveGradDecoder(6, [4, 2], 8, [8, 8], [[1, 2, 4, 8]] * 2, 4, [6], [[1, 2, 4]], blocks_per_stage=2)
    keys = set(dec.state_dict())
    for key in ("ublocks.0.upsampling_basic_block.first_block_main_branch.upsampling.2.weight",
                "ublocks.0.upsampling_basic_block.first_block_residual_branch.0.weight",
                "ublocks.0.first_block_main_branch.noupsampling.1.weight",
                "ublocks.0.first_block_main_branch.modulation.convolution.weight",
                "ublocks.0.first_block_residual_branch.0.weight",
                "ublocks.0.second_block_main_branch.modulation_1.convolution.weight",
                "dblocks.0.downsampling_basic_block.main_branch.1.convolution.weight",
                "dblocks.0.downsampling_basic_block.residual_branch.0.weight",
                "dblocks.0.main_branch.0.convolution.weight", "dblocks.0.residual_branch.0.weight"):
        assert key in keys, key
    assert not any(k.startswith("ublocks.0.first_block_main_branch.upsampling") for k in keys)


def test_maum_config_errors_name_the_key():
    with pytest.raises(ValueError, match="lacks key 'wavegrad'"):
        from_maum_config({"encoder": {}, "dur_predictor": {}, "ddpm": {}}, 40)


def test_six_step_sampling_length_range_calls_and_seed():
    torch.manual_seed(3)
    model = WaveGrad2.from_config(tiny_config()).eval()
    calls = []
    model.decoder.register_forward_hook(lambda *_: calls.append(1))
    text, lengths = torch.tensor([[1, 5, 2, 7]]), torch.tensor([4])
    durations = torch.tensor([[3.0, 2.0, 0.0, 4.0]])
    schedule = NoiseSchedule.from_betas(named_schedule("fast_6"))
    out = model.infer(text, lengths, schedule, generator=torch.Generator().manual_seed(5), durations=durations)
    assert len(calls) == 6
    assert out["wav"].shape == (1, 9 * HOP) and int(out["lengths"][0]) == 9 * HOP
    assert torch.isfinite(out["wav"]).all() and float(out["wav"].abs().max()) <= 1.0
    again = model.infer(text, lengths, schedule, generator=torch.Generator().manual_seed(5), durations=durations)
    other = model.infer(text, lengths, schedule, generator=torch.Generator().manual_seed(6), durations=durations)
    assert torch.equal(out["wav"], again["wav"]) and not torch.equal(out["wav"], other["wav"])
    predicted = model.infer(text, lengths, schedule, generator=torch.Generator().manual_seed(5))
    assert int(predicted["lengths"][0]) == int(predicted["durations"].sum()) * HOP > 0


def test_aligner_durations_cover_every_frame():
    torch.manual_seed(4)
    model = WaveGrad2.from_config(tiny_config(aligner_mel_channels=6))
    tokens = torch.randn(2, 4, 16)
    token_mask = torch.tensor([[True] * 4, [True, True, True, False]])
    mel, mel_lengths = torch.randn(2, 6, 11), torch.tensor([11, 7])
    durations, loss = model.aligner(tokens, token_mask, mel, mel_lengths)
    assert durations.sum(-1).tolist() == [11.0, 7.0] and float(durations[1, 3]) == 0.0
    assert bool((durations[token_mask] >= 1).all()) and loss.requires_grad
    with pytest.raises(ValueError, match="fewer frames than tokens"):
        model.aligner(tokens, token_mask, mel[..., :3], torch.tensor([3, 3]))


def test_tiny_model_lowers_its_noise_prediction_loss():
    torch.manual_seed(0)
    model = WaveGrad2.from_config(tiny_config(window_frames=8))
    gen = torch.Generator().manual_seed(1)
    text = torch.randint(1, 10, (4, 6), generator=gen)
    durations = torch.randint(2, 5, (4, 6), generator=gen).float()
    wav, lengths = tone_batch(text, durations), torch.full((4,), 6)
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)

    def held_out_l1():
        model.eval()
        fixed = torch.Generator().manual_seed(7)
        with torch.no_grad():
            values = []
            for _ in range(4):
                level = sample_training_noise_level(model.train_schedule, 4, fixed)
                values.append(float(model.losses(model(text, lengths, durations, wav, level, generator=fixed))["l1"]))
        model.train()
        return sum(values) / len(values)

    before = held_out_l1()
    first_dur = None
    for _ in range(60):
        level = sample_training_noise_level(model.train_schedule, 4)
        losses = model.losses(model(text, lengths, durations, wav, level))
        first_dur = float(losses["duration"]) if first_dur is None else first_dur
        optimizer.zero_grad()
        (losses["l1"] + losses["duration"]).backward()
        optimizer.step()
    after = held_out_l1()
    assert after < 0.5 * before, (before, after)
    assert float(losses["duration"]) < 0.5 * first_dur
