"""Parity of the HierSpeech++ synthesizer with the official code (fixtures/hierspeechpp/synth_*.pt).

Every size comes from the fixture's stored config; weights load strictly; tolerances per fixtures/README.md:
waveforms, predicted F0 and style vectors max abs diff <= 1e-4; other float intermediates
allclose(rtol=1e-4, atol=1e-4). The batch-2 module fixtures encode the official unmasked padding
behaviour, so those blocks run with ``leaky_padding=True``.
"""

from __future__ import annotations

import pytest
import torch

from models.tts.hierspeechpp.encoders import ProsodyMelDecoder, SourceFilterEncoder
from models.tts.hierspeechpp.generator import HierarchicalGenerator, SourceNetwork
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from modules.dit_flow import BiTFlow
from modules.style_encoder import StyleEncoder
from tests.helpers import float_state_dict, hierspeech_config_of, load_fixture

WAVE_TOL = 1e-4


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def assert_max_abs(actual: torch.Tensor, expected: torch.Tensor, name: str, tol: float = WAVE_TOL) -> None:
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    diff = float((actual.detach() - expected).abs().max())
    assert diff <= tol, f"{name}: max abs diff {diff:.3g} > {tol}"


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    assert torch.allclose(actual, expected, rtol=1e-4, atol=1e-4), (
        f"{name}: max abs diff {float((actual - expected).abs().max()):.3g}")


# ----------------------------------------------------------------------------- building blocks
@pytest.fixture(scope="module")
def modules_fx():
    return load_fixture("hierspeechpp/synth_modules_tiny.pt")


def _block(fx, name):
    return fx["config"][name], float_state_dict(fx["state_dict"][name]), fx["inputs"][name], fx["outputs"][name]


def _load(module: torch.nn.Module, state) -> torch.nn.Module:
    module.load_state_dict(state, strict=True)
    return module.eval()


def test_generator_block(modules_fx):
    cfg, sd, inp, out = _block(modules_fx, "Generator")
    gen = _load(HierarchicalGenerator(cfg["initial_channel"], cfg["resblock_kernel_sizes"],
                                      cfg["resblock_dilation_sizes"], cfg["upsample_rates"],
                                      cfg["upsample_initial_channel"], cfg["upsample_kernel_sizes"],
                                      gin_channels=cfg["gin_channels"]), sd)
    with torch.no_grad():
        wav = gen(inp["x"], inp["pitch"], g=inp["g"])
    assert_max_abs(wav, out["wav"], "Generator.wav")


def test_source_network_block(modules_fx):
    cfg, sd, inp, out = _block(modules_fx, "SourceNetwork")
    sn = _load(SourceNetwork(cfg["upsample_initial_channel"], in_channels=inp["x"].size(1),
                             gin_channels=inp["g"].size(1)), sd)
    with torch.no_grad():
        e, f0 = sn(inp["x"], inp["g"])
    assert_close(e, out["e"], "SourceNetwork.e")
    assert_max_abs(f0, out["f0_pred"], "SourceNetwork.f0_pred")


def test_bit_flow_block_with_official_padding_leak(modules_fx):
    cfg, sd, inp, out = _block(modules_fx, "ResidualCouplingBlock_Transformer")
    # n_flows / n_heads are constants of the official class (4, 2) unless the fixture stores them
    flow = _load(BiTFlow(cfg["channels"], cfg["hidden_channels"], cfg["kernel_size"], cfg["n_layers"],
                         n_flows=cfg.get("n_flows", 4), gin_channels=cfg["gin_channels"],
                         n_heads=cfg.get("n_heads", 2), leaky_padding=True), sd)
    x, mask, g = inp["x"], inp["x_mask"], inp["g"]
    with torch.no_grad():
        fwd = flow(x, mask, g)
        assert_close(fwd, out["forward"], "flow.forward")
        assert_close(flow(x, mask, g, reverse=True), out["reverse"], "flow.reverse")
        assert_close(flow(fwd, mask, g, reverse=True), out["forward_then_reverse"], "flow.forward_then_reverse")
        # Default (masked) mode: the padded item equals itself run alone, and differs from the leaky batch.
        flow.set_leaky_padding(False)
        masked = flow(x, mask, g)
        n = int(inp["lengths"].min())
        b = int(inp["lengths"].argmin())
        alone = flow(x[b:b + 1, :, :n], mask[b:b + 1, :, :n], g[b:b + 1])
    assert_close(masked[b:b + 1, :, :n], alone, "masked flow, padded item vs alone")
    assert float((masked[b, :, :n] - out["forward"][b, :, :n]).abs().max()) > 1e-2


def test_source_filter_encoder_block(modules_fx):
    cfg, sd, inp, out = _block(modules_fx, "PosteriorSFEncoder")
    enc = _load(SourceFilterEncoder(cfg["src_channels"], cfg["out_channels"], cfg["hidden_channels"],
                                    cfg["kernel_size"], cfg["dilation_rate"], cfg["n_layers"],
                                    gin_channels=cfg["gin_channels"]), sd)
    with torch.no_grad():
        z, m, logs, mask = enc(inp["w2v"], inp["f0"], inp["lengths"], g=inp["g"], noise=inp["noise"])
    assert torch.equal(mask, inp["x_mask"])
    assert_close(m, out["m"], "PosteriorSFEncoder.m")
    assert_close(logs, out["logs"], "PosteriorSFEncoder.logs")
    assert_close(z, out["z"], "PosteriorSFEncoder.z")


def test_style_encoder_block(modules_fx):
    cfg, sd, inp, out = _block(modules_fx, "StyleEncoder")
    enc = _load(StyleEncoder(cfg["in_dim"], cfg["hidden_dim"], cfg["out_dim"], leaky_padding=True), sd)
    with torch.no_grad():
        style = enc(inp["mel"], inp["mask"])
    assert_max_abs(style, out["style"], "StyleEncoder.style")


def test_mel_decoder_block(modules_fx):
    cfg, sd, inp, out = _block(modules_fx, "MelDecoder")
    dec = _load(ProsodyMelDecoder(cfg["hidden_channels"], cfg["filter_channels"], cfg["n_heads"], cfg["n_layers"],
                                  cfg["kernel_size"], cfg["p_dropout"], cfg["mel_size"], cfg["gin_channels"]), sd)
    with torch.no_grad():
        mel = dec(inp["x"], inp["x_mask"], g=inp["g"])
    assert_close(mel, out["mel20"], "MelDecoder.mel20")


# ----------------------------------------------------------------------------- whole synthesizer
@pytest.fixture(scope="module")
def vc_fx():
    return load_fixture("hierspeechpp/synth_vc_tiny.pt")


@pytest.fixture(scope="module")
def vc_model(vc_fx):
    model = HierSpeechPPSynthesizer.from_config(hierspeech_config_of(vc_fx))
    model.set_leaky_padding(True)
    model.load_state_dict(float_state_dict(vc_fx["state_dict"]), strict=True)
    return model.eval()


def test_voice_conversion_noise_control_and_intermediates(vc_fx, vc_model):
    inp, out = vc_fx["inputs"], vc_fx["outputs"]
    g_rows = vc_model.style(inp["prompt_mel_same"], inp["prompt_length"])
    assert_max_abs(g_rows, out["vc_g_rows"], "vc_g_rows")
    res = vc_model.convert(inp["w2v"], inp["length"], inp["log_f0"], g_rows[:1], noise_scale=0.0)
    assert_max_abs(g_rows[:1], out["vc_g"], "vc_g")
    assert_close(res["m_p"], out["vc_m_p"], "vc_m_p")
    assert_close(res["logs_p"], out["vc_logs_p"], "vc_logs_p")
    assert_close(res["z_after_flow_l"], out["vc_z_after_flow_l_rev"], "vc_z_after_flow_l_rev")
    assert_close(res["z_after_flow"], out["vc_z_after_flow_rev"], "vc_z_after_flow_rev")
    assert_close(res["sn_e"], out["vc_sn_e"], "vc_sn_e")
    assert_max_abs(res["sn_f0"], out["vc_sn_f0"], "vc_sn_f0")
    assert_max_abs(res["wav"], out["vc_wav"], "vc_wav")


def test_voice_conversion_with_denoise_ratio(vc_fx, vc_model):
    inp, out = vc_fx["inputs"], vc_fx["outputs"]
    ratio = float(inp["denoise_ratio"])
    g_rows = vc_model.style(inp["prompt_mel_pair"], inp["prompt_length"])
    assert_max_abs(g_rows, out["vc_den_g_rows"], "vc_den_g_rows")
    g = (1 - ratio) * g_rows[:1] + ratio * g_rows[1:]
    assert_max_abs(g, out["vc_den_g"], "vc_den_g")
    _, m_p, _, mask = vc_model.enc_p_l(inp["w2v"], inp["log_f0"], inp["length"], g=g)
    z = vc_model.flow(vc_model.flow_l(m_p, mask, g=g, reverse=True), mask, g=g, reverse=True)
    assert_close(z, out["vc_den_z_after_flow_rev"], "vc_den_z_after_flow_rev")
    wav = vc_model.voice_conversion_noise_control(inp["w2v"], inp["length"], inp["prompt_mel_pair"],
                                                  inp["prompt_length"], inp["log_f0"], noise_scale=0.0,
                                                  denoise_ratio=ratio)
    assert_max_abs(wav, out["vc_den_wav"], "vc_den_wav")


def test_voice_conversion_unconditional(vc_fx, vc_model):
    inp, out = vc_fx["inputs"], vc_fx["outputs"]
    single_len = torch.tensor([inp["prompt_mel_single"].size(2)])
    wav = vc_model.voice_conversion(inp["w2v"], inp["length"], inp["prompt_mel_single"], single_len,
                                    inp["log_f0"], noise_scale=0.0, uncond=True)
    assert_max_abs(wav, out["vcu_wav"], "vcu_wav")


def test_infer_with_injected_noise(vc_fx, vc_model):
    inp, out = vc_fx["inputs"], vc_fx["outputs"]
    assert_max_abs(vc_model.style(inp["seg_mel"], inp["length"]), out["infer_g"], "infer_g")
    _, m, logs, _ = vc_model.enc_p_l(inp["w2v"], inp["log_f0"], inp["length"], g=out["infer_g"])
    assert_close((m + inp["infer_noise"] * torch.exp(logs)), out["infer_z"], "infer_z")
    wav, f0 = vc_model.infer(inp["seg_mel"], inp["w2v"], inp["length"], inp["log_f0"], noise=inp["infer_noise"])
    assert_max_abs(wav, out["infer_wav"], "infer_wav")
    assert_max_abs(f0, out["infer_sn_f0"], "infer_sn_f0")


def test_f0_extraction_through_acoustic_encoder(vc_fx, vc_model):
    inp, out = vc_fx["inputs"], vc_fx["outputs"]
    g = vc_model.style(inp["seg_mel"], inp["length"])
    assert_max_abs(g, out["f0x_g"], "f0x_g")
    with torch.no_grad():
        _, m_q, logs_q, _ = vc_model.enc_q(inp["seg_linear"], inp["seg_audio"], inp["length"], g=g)
    assert_close(m_q, out["f0x_m_q"], "f0x_m_q")
    assert_close(logs_q, out["f0x_logs_q"], "f0x_logs_q")
    f0 = vc_model.f0_extraction(inp["seg_linear"], inp["seg_mel"], inp["length"], inp["seg_audio"], noise_scale=0.0)
    assert_max_abs(f0, out["f0x_sn_f0"], "f0x_sn_f0")
