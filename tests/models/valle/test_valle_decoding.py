"""Decoding behaviour on a tiny random VALL-E: KV cache == recomputation, batch == one by one, sampling rules."""

from __future__ import annotations

import pytest
import torch

from models.tts.valle.config import ValleDecodingConfig
from models.tts.valle.decoding import filter_logits, generate_first_codebook, sample_tokens, synthesize_codes
from models.tts.valle.model import Valle


def tiny(prefix_mode=1, prepend_bos=False, seed=0, **sizes):
    torch.manual_seed(seed)
    model = Valle.from_config(dict(d_model=32, nhead=2, num_layers=2, num_quantizers=4, num_text_tokens=20,
                                   num_audio_tokens=24, prefix_mode=prefix_mode, prepend_bos=prepend_bos, **sizes)).eval()
    with torch.no_grad():  # a sharper output layer so that greedy decoding is far from ties
        model.ar_predict_layer.weight.mul_(3.0)
    return model


def constant_logits(model, best):
    """Make every AR step output the same logits, highest for id ``best``."""
    with torch.no_grad():
        model.ar_decoder.norm.weight.zero_()
        model.ar_decoder.norm.bias.fill_(1.0)
        model.ar_predict_layer.weight.zero_()
        model.ar_predict_layer.weight[best] = 1.0


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(3, 20, (2, 7), generator=g)
    text_lens = torch.tensor([7, 4])
    text[1, 4:] = 0
    prompt = torch.randint(0, 24, (2, 9, 4), generator=g)
    prompt_lens = torch.tensor([5, 9])
    prompt[0, 5:] = 0
    return text, text_lens, prompt, prompt_lens


@pytest.mark.parametrize("prefix_mode,prepend_bos,sizes", [
    (0, False, {}), (1, False, {}), (1, True, {}), (0, False, {"norm_first": False}), (1, False, {"nar_scale_factor": 0.5}),
])  # fmt: skip
def test_kv_cache_equals_recomputation_and_batch_equals_single(prefix_mode, prepend_bos, sizes):
    torch.set_num_threads(1)
    model = tiny(prefix_mode, prepend_bos, **sizes)
    text, text_lens, prompt, prompt_lens = inputs()
    greedy = ValleDecodingConfig(top_k=1, max_frames_per_token=3)
    cached, ar_c = synthesize_codes(model, text, text_lens, prompt, prompt_lens, greedy)
    slow = ValleDecodingConfig(top_k=1, max_frames_per_token=3, use_kv_cache=False)
    recomputed, ar_r = synthesize_codes(model, text, text_lens, prompt, prompt_lens, slow)
    assert ar_c.stop_reasons == ar_r.stop_reasons
    for a, b in zip(cached, recomputed):
        assert torch.equal(a, b)
    for b in range(2):  # each item alone, without any padding
        t, p = int(text_lens[b]), int(prompt_lens[b])
        alone, ar_1 = synthesize_codes(model, text[b : b + 1, :t], text_lens[b : b + 1], prompt[b : b + 1, :p], prompt_lens[b : b + 1], slow)
        assert torch.equal(alone[0], cached[b]), f"item {b}"
        assert ar_1.stop_reasons[0] == ar_c.stop_reasons[b]
    assert all(len(c) >= 1 for c in cached) and cached[0].shape[1] == 4


def test_length_cap_counts_text_tokens():
    model = tiny()
    constant_logits(model, best=5)  # never EOS
    text, text_lens, prompt, prompt_lens = inputs()
    ar = generate_first_codebook(model, text, text_lens, prompt[..., 0], prompt_lens, ValleDecodingConfig(top_k=1, max_frames_per_token=2))
    assert [len(c) for c in ar.codes] == [2 * 7 + 1, 2 * 4 + 1]  # stops once generated > cap
    assert ar.stop_reasons == ["length", "length"]


def test_eos_at_first_step_is_an_error_naming_the_item():
    model = tiny()
    constant_logits(model, best=model.eos_id)
    text, text_lens, prompt, prompt_lens = inputs()
    with pytest.raises(ValueError, match="batch item 0"):
        generate_first_codebook(model, text, text_lens, prompt[..., 0], prompt_lens, ValleDecodingConfig(top_k=1))


def test_sampling_filters_and_seeds():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    kept = torch.isfinite(filter_logits(logits, top_k=2, top_p=1.0, temperature=1.0))
    assert kept.tolist() == [[True, True, False, False, False]]
    # softmax of [4,3,2,1,0]: 0.636, 0.234, 0.086, ... -> top_p 0.8 keeps the first two (crossing token kept)
    kept = torch.isfinite(filter_logits(logits, top_k=-100, top_p=0.8, temperature=1.0))
    assert kept.tolist() == [[True, True, False, False, False]]
    cooled = filter_logits(logits, top_k=-100, top_p=1.0, temperature=0.5)
    assert torch.allclose(cooled, logits * 2)
    cfg = ValleDecodingConfig(top_k=3, temperature=1.0)
    draws = lambda seed: [int(sample_tokens(logits.expand(64, -1), cfg, torch.Generator().manual_seed(seed))[i]) for i in range(64)]
    assert draws(5) == draws(5) and draws(5) != draws(6)
    assert set(draws(5)) <= {0, 1, 2}
    # one generator per row: a row's draws depend on its own generator only
    rows = lambda seeds: sample_tokens(logits.expand(len(seeds), -1), cfg, [torch.Generator().manual_seed(s) for s in seeds])
    assert [int(rows([5 + i, 9])[0]) for i in range(20)] == [int(rows([5 + i, 1])[0]) for i in range(20)]
    assert [int(rows([5 + i, 9])[0]) for i in range(20)] == [int(rows([5 + i])[0]) for i in range(20)]
    assert len({int(rows([5 + i])[0]) for i in range(20)}) > 1


def test_sampled_generation_is_seeded():
    model = tiny()
    text, text_lens, prompt, prompt_lens = inputs()
    cfg = ValleDecodingConfig(top_k=5, top_p=0.9, temperature=0.8, max_frames_per_token=2)
    run = lambda seed: synthesize_codes(model, text, text_lens, prompt, prompt_lens, cfg, torch.Generator().manual_seed(seed))[0]
    first, again = run(3), run(3)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
