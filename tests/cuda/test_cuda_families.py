"""The other families on the GPU against their official fixtures: SpeechSR (the released weights, plain and
windowed), VALL-E greedy decoding with its KV cache, WaveGrad 2's refinement chain, Text-to-Vec and the Glow-TTS
latent model. The fixtures' tolerances (fixtures/README.md) hold in float32 with TF32 off; see test_cuda_paths.py
for how these tests run."""

from __future__ import annotations

import pytest
import torch

from models.sr.speechsr.model import SpeechSR, official_model_kwargs
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.valle.config import ValleDecodingConfig
from models.tts.valle.decoding import fill_codebooks, generate_first_codebook
from models.tts.wavegrad2.checkpoint import model_from_maum
from models.ttv.hierspeechpp_ttv.config import from_official_config as ttv_config
from models.ttv.hierspeechpp_ttv.model import TextToVec
from modules.diffusion import NoiseSchedule, refine
from tests.cuda.test_cuda_paths import DEVICE, _full_float32, assert_max_abs, on_device, pytestmark  # noqa: F401
from tests.helpers import INTERMEDIATE_TOL, float_state_dict, load_fixture
from tests.models.valle.fixture_model import model_from_fixture as valle_from_fixture


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert actual.device.type == DEVICE.type, f"{name} came back on {actual.device}, not {DEVICE}"
    torch.testing.assert_close(actual.detach().cpu().double(), expected.double(), rtol=INTERMEDIATE_TOL,
                               atol=INTERMEDIATE_TOL, msg=lambda m: f"{name} on {DEVICE}: {m}")


@pytest.mark.parametrize("tag", ["24k", "48k"])
def test_speechsr_released_weights_on_the_device(tag):
    fx = load_fixture("hierspeechpp/speechsr_real.pt")
    cfg = fx["config"][tag]
    model = SpeechSR.from_config({"target_rate": cfg["data"]["sampling_rate"], **official_model_kwargs(cfg["model"])})
    model.load_state_dict(fx["state_dict"][tag], strict=True)
    model = model.eval().to(DEVICE)
    inputs, outputs = on_device(fx["inputs"]), fx["outputs"]
    with torch.no_grad():
        assert_max_abs(model(inputs["audio"]), outputs[f"wav_{tag}"], f"wav_{tag}")
        model.optimize_for_inference(chunk_size=5000)  # windows across the clip, an odd tail
        assert_max_abs(model(inputs["audio_odd"]), outputs[f"wav_{tag}_odd"], f"wav_{tag}_odd windowed")


def test_valle_greedy_decoding_with_its_cache_on_the_device():
    fx = load_fixture("valle/valle_tiny.pt")
    i = on_device(fx["inputs"])
    modes = sorted(int(k[len("prefix_mode"):]) for k in fx["outputs"] if k.startswith("prefix_mode"))
    assert modes
    for mode in modes:
        ref = fx["outputs"][f"prefix_mode{mode}"]["inference"]
        model = valle_from_fixture(fx, mode).to(DEVICE)
        prompt = torch.tensor([i["inf_y"].shape[1]], device=DEVICE)
        cfg = ValleDecodingConfig(top_k=1, use_kv_cache=True)
        with torch.no_grad():
            ar = generate_first_codebook(model, i["inf_x"], i["inf_x_lens"], i["inf_y"][..., 0], prompt, cfg,
                                         keep_logits=True)
            first = torch.cat([i["inf_y"][0, :, 0], ar.codes[0].to(DEVICE)]).unsqueeze(0)
            codes, _ = fill_codebooks(model, i["inf_x"], i["inf_x_lens"], first,
                                      torch.tensor([first.shape[1]], device=DEVICE), i["inf_y"], prompt)
        assert ar.steps == ref["ar_steps"], f"mode {mode}: {ar.steps} AR steps, reference {ref['ar_steps']}"
        assert torch.equal(codes[:, i["inf_y"].shape[1]:].cpu(), ref["codes"]), f"mode {mode}: codes differ"
        assert_close(ar.step_logits[0], ref["ar_step_logits"], f"mode {mode} AR step logits")


def test_wavegrad2_refinement_chain_on_the_device():
    fx = load_fixture("wavegrad2/wavegrad2_tiny.pt")
    model = model_from_maum(fx["state_dict"], fx["config"], int(fx["n_symbols"]), "wavegrad2_tiny").to(DEVICE)
    ref = fx["outputs"]["refine"]
    schedule = NoiseSchedule.from_betas(fx["infer_schedule"]["betas"], precision="float32")
    hidden = ref["hidden"].to(DEVICE)
    with torch.no_grad():
        states = refine(lambda y, level: model.decoder(y, hidden, level), schedule, ref["y_T"].to(DEVICE),
                        step_noise=[n.to(DEVICE) for n in ref["step_noise"]],
                        clip_denoised=bool(ref["clip_denoised"]), return_states=True)["states"]
    assert_max_abs(states, ref["states"], "refinement states")


def test_text_to_vec_on_the_device():
    fx = load_fixture("hierspeechpp/ttv_tiny.pt")
    model = TextToVec.from_config(ttv_config(fx["config"]["model"], leaky_padding=True))
    model.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    model = model.eval().to(DEVICE)
    i, o = on_device(fx["inputs"]), fx["outputs"]
    with torch.no_grad():
        w2v, pitch = model.infer_noise_control(i["token"], i["token_length"], i["prompt_mel_same"],
                                               i["prompt_length"], noise_scale=0, noise_scale_w=0)
    assert_max_abs(w2v, o["inc_w2v"], "w2v")
    assert_max_abs(pitch, o["inc_pitch"], "pitch")


def test_glow_tts_latent_model_on_the_device():
    fx = load_fixture("glow_wavegan/glowtts_latent_tiny.pt")
    model = GlowTTS.from_config(fx["config"])
    model.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    model = model.eval().to(DEVICE)
    inp, ref = on_device(fx["inputs"]), fx["outputs"]["train"]
    with torch.no_grad():
        out = model(inp["x"], inp["x_lengths"], inp["y"], inp["y_lengths"])
        mle, dur = model.losses(out, inp["x_lengths"])
    for key in ("x_m", "logw", "z", "logdet"):
        assert_close(out[key], ref[key], key)
    assert torch.equal(out["attn"].transpose(2, 3).cpu().float(), ref["attn"].float()), "alignment differs"
    assert_close(mle, ref["mle_loss"], "mle_loss")
    assert_close(dur, ref["duration_loss"], "duration_loss")
