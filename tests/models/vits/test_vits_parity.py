"""VITS vs the official jaywalnut310/vits runs stored in vits/vits_{ljs,vctk}_tiny.pt.

Sizes come from each fixture's ``config``; weights load strictly; every stored output is compared at the
README tolerances (waveforms 1e-4 max abs, other floats allclose 1e-4, discrete outputs exact).
"""

import math

import pytest
import torch

from models.tts.vits.config import from_official_config
from models.tts.vits.model import VITS
from tests.helpers import float_state_dict, load_fixture

FIXTURES = ["vits/vits_ljs_tiny.pt", "vits/vits_vctk_tiny.pt"]
DISCRETE = {"attn", "y_mask", "w_ceil"}


def build_from_fixture(fx) -> VITS:
    cfg = fx["config"]
    # Through the official-format converter: the fixture's model block holds official names (n_layers_q).
    hop = math.prod(cfg["model"]["upsample_rates"])
    official = {"model": dict(cfg["model"]),
                "data": {"filter_length": 2 * (cfg["spec_channels"] - 1), "hop_length": hop,
                         "n_speakers": cfg["n_speakers"]},
                "train": {"segment_size": cfg["segment_size_frames"] * hop}}
    config = from_official_config(official, n_vocab=cfg["n_vocab"])
    assert config.spec_channels == cfg["spec_channels"] and config.segment_frames == cfg["segment_size_frames"]
    model = VITS.from_config(config)
    model.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    return model.eval()


def _compare(name, got, expected):
    assert got.shape == expected.shape, f"{name}: shape {tuple(got.shape)} vs {tuple(expected.shape)}"
    if name.split("_", 1)[1] in DISCRETE:
        assert torch.equal(got, expected), f"{name}: discrete output differs"
    elif name.endswith("_wav"):
        diff = float((got - expected).abs().max())
        assert diff <= 1e-4, f"{name}: max abs diff {diff}"
    else:
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("name", FIXTURES)
def test_infer_matches_official(name):
    fx = load_fixture(name)
    model = build_from_fixture(fx)
    inp, out = fx["inputs"], fx["outputs"]
    sid = inp.get("sid")
    res = model.infer(inp["ids"], inp["ids_length"], sid=sid, noise_scale=inp["noise_scale"],
                      length_scale=inp["length_scale"], noise_scale_w=inp["noise_scale_w"])
    checked = 0
    for key, expected in out.items():
        if not key.startswith("infer_"):
            continue
        field = key[len("infer_"):]
        _compare(key, res[field], expected)
        checked += 1
    assert checked >= 1 and "infer_wav" in out
    # The decoder sees z * y_mask: the stored z is the flow output itself.
    assert int(res["lengths"][0]) == res["wav"].size(-1)


def test_voice_conversion_matches_official():
    """Every fixture that stores a voice conversion (the multi-speaker one) is replayed with its enc_q noise."""
    replayed = 0
    for name in FIXTURES:
        fx = load_fixture(name)
        inp, out = fx["inputs"], fx["outputs"]
        if "vc_spec" not in inp:
            continue
        model = build_from_fixture(fx)
        res = model.voice_conversion(inp["vc_spec"], inp["vc_spec_length"], inp["vc_sid_src"], inp["vc_sid_tgt"],
                                     noise=inp["vc_enc_q_noise"])
        keys = [k for k in out if k.startswith("vc_")]
        assert "vc_wav" in keys
        for key in keys:
            _compare(key, res[key[len("vc_"):]], out[key])
        replayed += 1
    assert replayed >= 1


def test_vc_spectrogram_front_end_matches_official():
    """The fixture's VC input spectrogram is reproduced by the shared VITS linear spectrogram."""
    from processors.spectrogram import VitsLinearSpectrogram

    fx = load_fixture("vits/vits_vctk_tiny.pt")
    data = fx["config"]["data"]
    spec = VitsLinearSpectrogram(data["filter_length"], data["hop_length"], data["win_length"])(fx["inputs"]["vc_audio_norm"])
    expected = fx["inputs"]["vc_spec"]
    assert spec.shape == expected.shape
    assert float((spec - expected).abs().max()) <= 1e-4
