"""HierSpeech++ synthesizer: full-size key/shape equality with the official model, official-format
checkpoint I/O (plain and {'model': ...}), and exact batching with masked padding (the default)."""

from __future__ import annotations

import json

import pytest
import torch

from models.tts.hierspeechpp.checkpoint import load_official_checkpoint, save_official_checkpoint
from models.tts.hierspeechpp.config import from_official_config
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from tests.helpers import fixtures_dir, float_state_dict, hierspeech_config_of, load_fixture


def _keys_full():
    load_fixture("hierspeechpp/synth_modules_tiny.pt")  # skips when the fixture dir is absent
    return json.loads((fixtures_dir() / "hierspeechpp" / "keys_full.json").read_text())["synthesizer"]


def test_full_size_keys_shapes_and_counts_equal_official():
    ref = _keys_full()
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = HierSpeechPPSynthesizer.from_config(from_official_config(ref["config"]))
    state = model.state_dict()
    assert list(state) == list(ref["keys"])  # same keys in the same order
    for key, shape in ref["keys"].items():
        assert list(state[key].shape) == list(shape), key
    buffers = {name for name, _ in model.named_buffers()}
    assert buffers == set(ref["buffer_keys"])
    assert sum(p.numel() for p in model.parameters()) == ref["total_params"]
    for prefix, count in ref["param_count_by_prefix"].items():
        got = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] == prefix)
        assert got == count, prefix


@pytest.mark.parametrize("wrapped", [False, True])
def test_official_format_checkpoint_loads_strictly(tmp_path, wrapped):
    fx = load_fixture("hierspeechpp/synth_vc_tiny.pt")
    cfg = hierspeech_config_of(fx)
    model = HierSpeechPPSynthesizer.from_config(cfg)
    model.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    ckpt = tmp_path / "G_1.pth"
    save_official_checkpoint(model, ckpt, wrap=wrapped, iteration=1)
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert set(obj) == ({"model", "iteration"} if wrapped else set(fx["state_dict"]))
    # The official config.json layout next to the checkpoint.
    official = {"data": dict(fx["config"]["data"]), "model": dict(fx["config"]["model"]),
                "train": {"segment_size": fx["config"]["segment_size_frames"] * fx["config"]["data"]["hop_length"]}}
    (tmp_path / "config.json").write_text(json.dumps(official))
    loaded = load_official_checkpoint(ckpt)
    assert loaded.config.spec_channels == fx["config"]["spec_channels"]
    loaded.set_leaky_padding(True)
    inp, out = fx["inputs"], fx["outputs"]
    wav = loaded.voice_conversion_noise_control(inp["w2v"], inp["length"], inp["prompt_mel_same"],
                                                inp["prompt_length"], inp["log_f0"], noise_scale=0.0)
    assert float((wav - out["vc_wav"]).abs().max()) <= 1e-4
    # Inference-only loading: training-only modules dropped before loading, same VC numbers.
    lean = load_official_checkpoint(ckpt, inference_only=True)
    assert lean.enc_p is None and lean.enc_q is None and lean.mel_decoder is None
    assert not any(k.split(".")[0] in lean.TRAINING_ONLY for k in lean.state_dict())
    lean.set_leaky_padding(True)
    wav_lean = lean.voice_conversion_noise_control(inp["w2v"], inp["length"], inp["prompt_mel_same"],
                                                   inp["prompt_length"], inp["log_f0"], noise_scale=0.0)
    assert torch.equal(wav_lean, wav)
    if not wrapped:
        return
    # Folding weight norm and the polyphase activation path keep the numbers.
    loaded.prepare_for_inference(polyphase=True)
    wav_fast = loaded.voice_conversion_noise_control(inp["w2v"], inp["length"], inp["prompt_mel_same"],
                                                     inp["prompt_length"], inp["log_f0"], noise_scale=0.0)
    assert float((wav_fast - out["vc_wav"]).abs().max()) <= 1e-4


def test_checkpoint_errors_are_clear(tmp_path):
    fx = load_fixture("hierspeechpp/synth_vc_tiny.pt")
    state = float_state_dict(fx["state_dict"])
    state.pop("emb.weight")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="missing keys"):
        load_official_checkpoint(tmp_path / "bad.pth", hierspeech_config_of(fx))
    with pytest.raises(FileNotFoundError):
        load_official_checkpoint(tmp_path / "absent.pth", hierspeech_config_of(fx))


def test_masked_batch_equals_single_items():
    """Default (masked) padding: each item of a padded B=3 batch equals its B=1 run."""
    fx = load_fixture("hierspeechpp/synth_vc_tiny.pt")
    model = HierSpeechPPSynthesizer.from_config(hierspeech_config_of(fx))
    model.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    model.eval()
    inp = fx["inputs"]
    frames = inp["w2v"].size(2)
    lengths = torch.tensor([frames, frames - max(1, frames // 4), frames - max(2, frames // 2)])  # all sizes from the fixture
    hop, rate = model.hop_length, inp["log_f0"].size(2) // frames  # samples per frame, F0 frames per frame
    torch.manual_seed(0)
    ssl = torch.stack([torch.roll(inp["w2v"][0], 3 * b, dims=-1) for b in range(3)])
    f0 = torch.stack([torch.roll(inp["log_f0"][0], 3 * rate * b, dims=-1) for b in range(3)])
    mel = inp["prompt_mel_pair"]
    prompts = torch.cat([mel, mel[:1]], dim=0).clone()
    full = mel.size(2)
    prompt_len = torch.tensor([full, full, full * 4 // 5])
    prompts[2, :, full * 4 // 5:] = 3.0  # padding content must not matter
    for b in range(3):  # zero padding past each length, as a collate function does
        ssl[b, :, lengths[b]:] = 0
        f0[b, :, rate * lengths[b]:] = 0
    noise = torch.randn(3, fx["config"]["model"]["inter_channels"], frames)
    g = model.style(prompts, prompt_len)
    batched = model.convert(ssl, lengths, f0, g, noise_scale=0.5, noise=noise)
    for b in range(3):
        n = int(lengths[b])
        g1 = model.style(prompts[b:b + 1, :, :int(prompt_len[b])], prompt_len[b:b + 1])
        single = model.convert(ssl[b:b + 1, :, :n], lengths[b:b + 1], f0[b:b + 1, :, :rate * n], g1,
                               noise_scale=0.5, noise=noise[b:b + 1, :, :n])
        assert float((batched["wav"][b:b + 1, :, :hop * n] - single["wav"]).abs().max()) <= 1e-5, b
        if n < frames:
            assert float(batched["wav"][b, :, hop * n:].abs().max()) == 0.0
