"""TTV parity with the official ``ttv_v1`` model: inference paths and the replayed training forward."""

from __future__ import annotations

import json

import pytest
import torch

from models.ttv.hierspeechpp_ttv.config import from_official_config
from models.ttv.hierspeechpp_ttv.losses import ttv_losses
from models.ttv.hierspeechpp_ttv.model import TextToVec
from tests.helpers import INTERMEDIATE_TOL, fixtures_dir, float_state_dict, load_fixture

WAVE = dict(rtol=0, atol=1e-4)
INTER = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def fx():
    return load_fixture("hierspeechpp/ttv_tiny.pt")


@pytest.fixture(scope="module")
def model(fx):
    torch.manual_seed(0)
    m = TextToVec.from_config(from_official_config(fx["config"]["model"], leaky_padding=True))
    m.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    return m.eval()


def _close(got, expected, tol, name):
    assert got.shape == expected.shape, f"{name}: {tuple(got.shape)} vs {tuple(expected.shape)}"
    assert torch.allclose(got.float(), expected.float(), **tol), f"{name}: max diff {(got - expected).abs().max()}"


def _run_inc(model, fx, mel_key, length_scale, denoise_ratio):
    i = fx["inputs"]
    g = model.style(i[mel_key], i["prompt_length"])
    g_mix = (1 - denoise_ratio) * g[:1] + denoise_ratio * g[1:]
    w2v, pitch, _, det = model.generate(i["token"], i["token_length"], g_mix, noise_scale=0.0, noise_scale_w=0.0,
                                        length_scale=length_scale, return_details=True)
    return g, w2v, pitch, det


def test_infer_noise_control_same_prompt(model, fx) -> None:
    o = fx["outputs"]
    g, w2v, pitch, det = _run_inc(model, fx, "prompt_mel_same", 1.0, 0.0)
    _close(g, o["inc_g_rows"], WAVE, "g")
    _close(det["text_hidden"], o["inc_text_hidden"], INTER, "text_hidden")
    _close(det["m_p"], o["inc_m_p"], INTER, "m_p")
    _close(det["logs_p"], o["inc_logs_p"], INTER, "logs_p")
    _close(det["logw"], o["inc_logw"], INTER, "logw")
    assert torch.equal(det["w_ceil"], o["inc_w_ceil"])
    _close(det["z"], o["inc_z"], INTER, "z")
    _close(w2v, o["inc_w2v"], WAVE, "w2v")
    _close(pitch, o["inc_pitch"], WAVE, "pitch")
    # the public API gives the same
    i = fx["inputs"]
    w2v_api, pitch_api = model.infer_noise_control(i["token"], i["token_length"], i["prompt_mel_same"],
                                                   i["prompt_length"], noise_scale=0, noise_scale_w=0)
    assert torch.equal(w2v_api, w2v) and torch.equal(pitch_api, pitch)


def test_infer_noise_control_prompt_pair(model, fx) -> None:
    o, i = fx["outputs"], fx["inputs"]
    _, w2v, pitch, det = _run_inc(model, fx, "prompt_mel_pair", float(i["length_scale_2"]), float(i["denoise_ratio_2"]))
    _close(det["logw"], o["inc2_logw"], INTER, "logw")
    assert torch.equal(det["w_ceil"], o["inc2_w_ceil"])
    _close(w2v, o["inc2_w2v"], WAVE, "w2v")
    _close(pitch, o["inc2_pitch"], WAVE, "pitch")


def test_infer_single_prompt(model, fx) -> None:
    o, i = fx["outputs"], fx["inputs"]
    w2v, pitch = model.infer(i["token"], i["token_length"], i["prompt_mel_single"], i["prompt_length"][:1],
                             noise_scale=0, noise_scale_w=0)
    _close(w2v, o["inc_w2v"], WAVE, "w2v")
    _close(pitch, o["inf_pitch"], WAVE, "pitch")


def test_training_forward_and_losses(model, fx) -> None:
    t, o = fx["inputs"]["train"], fx["outputs"]
    out = model(t["w2v"], t["length"], t["text"], t["text_length"], t["mel"], noise_q=t["rng_enc_q_noise"],
                slice_uniform=t["rng_slice_uniform"], noise_dur=t["rng_sdp_e_q"])
    assert torch.equal(out.ids_slice, o["tr_ids_slice"])
    assert torch.equal(out.attn.squeeze(1), o["tr_attn"])
    assert torch.equal(out.y_mask, o["tr_y_mask"])
    _close(out.g, o["tr_g"], WAVE, "g")
    for name, got in (("tr_z", out.z), ("tr_z_p", out.z_p), ("tr_m_q", out.m_q), ("tr_logs_q", out.logs_q),
                      ("tr_m_p_expanded", out.m_p), ("tr_logs_p_expanded", out.logs_p),
                      ("tr_phoneme_logits", out.phoneme_logits), ("tr_l_length", out.l_length)):
        _close(got, o[name], INTER, name)
    _close(out.w2v_predicted, o["tr_w2v_predicted"], WAVE, "w2v_predicted")
    _close(out.pitch_predicted, o["tr_pitch_predicted"], WAVE, "pitch_predicted")
    log_f0 = torch.log(t["f0_hz"] + 1)
    losses = ttv_losses(out, t["w2v"], log_f0, t["length"], t["text_for_ctc"], t["text_ctc_length"])
    _close(losses["f0_target"], o["tr_f0_target_slice"], WAVE, "f0_target")
    expected = o["tr_losses"]
    pairs = {"w2v_l1_x10": 10 * losses["w2v_l1"], "kl_x0.1": 0.1 * losses["kl"], "f0_l1": losses["f0_l1"],
             "dur_sdp": losses["dur_sdp"], "ctc": losses["ctc"], "total": losses["total"]}
    for name, got in pairs.items():
        assert torch.allclose(got, expected[name], rtol=1e-4, atol=0), f"{name}: {got.item()} vs {expected[name].item()}"
    masked = ttv_losses(out, t["w2v"], log_f0, t["length"], t["text_for_ctc"], t["text_ctc_length"], masked_w2v=True)
    # masked: same absolute-difference sum over fewer (valid) elements
    ratio = t["w2v"].numel() / (out.y_mask.sum() * t["w2v"].size(1))
    # the fixtures README: TTV training losses rtol 1e-4
    assert torch.allclose(masked["w2v_l1"], losses["w2v_l1"] * ratio, rtol=INTERMEDIATE_TOL)


def test_keys_and_shapes_equal_full_release() -> None:
    path = fixtures_dir() / "hierspeechpp" / "keys_full.json"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    expected = json.loads(path.read_text())["ttv"]
    with torch.device("meta"):
        model = TextToVec.from_config(from_official_config(expected["config"]))
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == expected["keys"]
    assert list(got) == list(expected["keys"])
