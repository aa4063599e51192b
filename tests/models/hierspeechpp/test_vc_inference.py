"""HierSpeech++ voice-conversion pipeline: official F0 handling, batching, prompt hooks, CLI, checkpoints.

The model is the tiny synthesizer with random weights and the SSL model a randomly initialised tiny
wav2vec2 (processors.ssl.build_random_ssl): the audio is meaningless but every step runs for real.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bins import infer as infer_cli
from bins import vc as vc_cli
from models.base.checkpoint import save_checkpoint
from models.base.pipeline import load_pipeline
from models.base.tasks import Audio, VoiceConversion
from models.tts.hierspeechpp.checkpoint import save_official_checkpoint
from models.tts.hierspeechpp.config import HierSpeechPPConfig
from models.tts.hierspeechpp.inference import (
    SAMPLE_RATE,
    VCOptions,
    VoiceConverter,
    replicate_prompt,
    retargeted_log_f0,
)
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from processors.audio import load_audio, save_audio
from tests.helpers import MINI_CORPUS, assert_yaapt_f0_matches, load_fixture
from utils.config import to_dict

SSL_DIM, SSL_LAYER = 32, 2
TINY = dict(hidden_channels=32, filter_channels=64, upsample_initial_channel=64, resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3, 5]], ssl_channels=SSL_DIM)
REF = MINI_CORPUS / "hierspeechpp_examples"


def _tiny_model(seed: int = 0) -> HierSpeechPPSynthesizer:
    torch.manual_seed(seed)
    model = HierSpeechPPSynthesizer.from_config(TINY)
    with torch.no_grad():  # DiT couplings start as identities; give the flows something to do
        for name, p in model.named_parameters():
            if "adaLN_modulation" in name or ".post." in name:
                p.normal_(0.0, 0.02)
    return model


def _ssl():
    return VoiceConverter.build_ssl(layer=SSL_LAYER, random_tiny_dim=SSL_DIM)


@pytest.fixture(scope="module")
def converter():
    return VoiceConverter(_tiny_model(), _ssl())


@pytest.fixture(scope="module")
def clips():
    vctk = sorted((MINI_CORPUS / "vctk").rglob("*.wav"))
    sources = [load_audio(vctk[0], SAMPLE_RATE)[4000:13000], load_audio(vctk[6], SAMPLE_RATE)[4000:10000],
               load_audio(REF / "reference_1.wav", SAMPLE_RATE)[:7500]]
    prompts = [load_audio(REF / "reference_2.wav", SAMPLE_RATE), load_audio(vctk[12], SAMPLE_RATE)[:12000],
               load_audio(REF / "reference_3.wav", SAMPLE_RATE)[:30000]]
    return sources, prompts


def test_front_end_matches_official_vc_script(converter):
    fx = load_fixture("hierspeechpp/frontend.pt")
    inp, out = fx["inputs"], fx["outputs"]
    source = converter._source(inp["audio"][0].numpy())
    official = VCOptions(min_prompt_seconds=0.0)
    target = inp["target_audio"][0].numpy()
    prompt = converter._prompt(target, official)
    converter._fill_f0([source], [prompt], "yaapt")
    assert torch.equal(source.ssl_input, out["vc_w2v_input"][0])
    assert source.frames == int(out["vc_src_length"][0])
    assert_yaapt_f0_matches(source.f0_hz, out["src_f0_hz"][0, 0].numpy(), SAMPLE_RATE, "src_f0_hz")
    log_f0 = retargeted_log_f0(out["src_f0_hz"][0, 0].numpy(), out["trg_f0_hz"][0, 0].numpy(), 4 * source.frames)
    assert float((log_f0 - out["vc_log_f0"][0, 0]).abs().max()) <= 1e-6
    # The official script does not replicate short prompts: parity runs with replication off, so a prompt of
    # any length goes to the mel unchanged.
    assert torch.equal(prompt.rows[0], torch.from_numpy(target))
    assert_yaapt_f0_matches(prompt.f0_hz, out["trg_f0_hz"][0, 0].numpy(), SAMPLE_RATE, "trg_f0_hz")
    mel, _ = converter.mel_fn(prompt.rows, torch.tensor([prompt.rows.shape[-1]] * 2))
    assert float((mel - out["vc_trg_mel"]).abs().max()) <= 1e-4
    short = target[: target.shape[-1] // 3]
    assert torch.equal(converter._prompt(short, official).rows[0], torch.from_numpy(short))


def test_prompt_replication():
    short = np.arange(5, dtype=np.float32)
    assert np.array_equal(replicate_prompt(short, 12), np.tile(short, 3))
    assert replicate_prompt(short, 5) is short


def test_batched_conversion_equals_one_by_one(converter, clips):
    sources, prompts = clips
    opts = VCOptions(noise_scale=0.667, batch_size=3)
    batched = converter.convert(sources, prompts, opts)
    single = converter.convert(sources, prompts, VCOptions(noise_scale=0.667, batch_size=1))
    for src, a, b in zip(sources, batched, single):
        assert a.shape == src.shape and a.dtype == np.float32
        assert abs(float(np.abs(a).max()) - 0.999) < 1e-5
        assert float(np.abs(a - b).max()) <= 1e-5
    assert float(np.abs(batched[0][:6000] - batched[1]).max()) > 1e-3  # different pairs, different audio
    # The noise scale matters, and the prompt's peak is honoured by scale_norm='prompt'.
    cold = converter.convert(sources[:1], prompts[:1], VCOptions(noise_scale=0.0, scale_norm="prompt"))[0]
    assert abs(float(np.abs(cold).max()) - float(np.abs(prompts[0]).max())) < 1e-5
    assert float(np.abs(cold / np.abs(cold).max() * 0.999 - batched[0]).max()) > 1e-3


def test_f0_beside_ssl_equals_one_after_the_other(converter, clips, monkeypatch):
    """F0 in a worker thread while the SSL encoder runs (what >= 2 threads get) changes nothing."""
    import models.tts.hierspeechpp.inference as vc_inference

    sources, prompts = clips
    outputs = {}
    for parallel in (False, True):
        monkeypatch.setattr(vc_inference, "side_by_side_pays", lambda device, on=parallel: on)
        outputs[parallel] = converter.convert(sources[:2], prompts[:2], VCOptions(batch_size=2))
    for a, b in zip(outputs[False], outputs[True]):
        assert np.array_equal(a, b)


def test_denoise_hook(clips):
    sources, prompts = clips
    calls = []

    def denoiser(wav: torch.Tensor) -> torch.Tensor:
        calls.append(wav.shape[-1])
        return torch.nn.functional.avg_pool1d(wav.view(1, 1, -1), 9, 1, 4).view(-1)  # a crude low-pass

    conv = VoiceConverter(_tiny_model(), _ssl(), denoiser=denoiser)
    plain = conv.convert(sources[:1], prompts[1:2], VCOptions(noise_scale=0.0))[0]
    mixed = conv.convert(sources[:1], prompts[1:2], VCOptions(noise_scale=0.0, denoise_ratio=0.8))[0]
    assert calls and calls[0] % 1600 == 0 and calls[0] > 3 * SAMPLE_RATE  # replicated, padded to 1600
    assert float(np.abs(plain - mixed).max()) > 1e-4
    bare = VoiceConverter(_tiny_model(), _ssl())
    with pytest.raises(ValueError, match="denoiser"):
        bare.convert(sources[:1], prompts[:1], VCOptions(denoise_ratio=0.5))


def test_cli_with_official_checkpoint(tmp_path, clips):
    model = _tiny_model(seed=3)
    ckpt = tmp_path / "release" / "G.pth"
    save_official_checkpoint(model, ckpt)
    official = {"model": {k: v for k, v in to_dict(model.config).items()
                          if k not in ("leaky_padding",)}, "data": {"filter_length": 1280, "hop_length": 320}}
    (ckpt.parent / "config.json").write_text(json.dumps(official))
    out = tmp_path / "out"
    src = REF / "reference_1.wav"
    rc = vc_cli.main(["--ckpt", str(ckpt), "--random_ssl_dim", str(SSL_DIM), "--ssl_layer", str(SSL_LAYER),
                      "--source", str(src), str(tmp_path / "missing.wav"), "--prompt", str(REF / "reference_4.wav"),
                      "--output_dir", str(out), "--noise_scale", "0"])
    assert rc == 1  # one pair failed and is listed
    wav = load_audio(out / "reference_1_to_reference_4.wav", None)
    assert wav.shape == load_audio(src, None).shape
    (bad_list,) = out.glob("bad_items_*.tsv")  # one list per run
    assert "missing.wav" in bad_list.read_text()


def test_echelon_checkpoint_through_registry(tmp_path, clips):
    sources, prompts = clips
    model = _tiny_model(seed=4)
    cfg = {"model_type": "hierspeechpp", "model": to_dict(model.config),
           "data": {"ssl": {"random_tiny_dim": SSL_DIM, "layer": SSL_LAYER}}}
    path = save_checkpoint(tmp_path / "checkpoints", 10, models={"generator": model}, config=cfg)
    assert HierSpeechPPConfig(**cfg["model"]) == model.config
    pipeline = load_pipeline(tmp_path, ["infer.noise_scale=0.0"])
    assert isinstance(pipeline, VoiceConversion) and pipeline.sample_rate == SAMPLE_RATE
    direct = VoiceConverter(model, _ssl()).convert(sources[:1], prompts[:1], VCOptions(noise_scale=0.0))[0]
    via = pipeline.convert([Audio(sources[0], SAMPLE_RATE)], [Audio(prompts[0], SAMPLE_RATE)])[0]
    assert path.name == "step_00000010" and via.sample_rate == SAMPLE_RATE
    assert float(np.abs(direct - via.waveform).max()) <= 1e-6
    # The generic bins/infer.py dispatch finds the pipeline from the saved model_type.
    src = save_audio(tmp_path / "src.wav", sources[1], SAMPLE_RATE)
    prm = save_audio(tmp_path / "prm.wav", prompts[1], SAMPLE_RATE)
    assert infer_cli.main(["--ckpt_dir", str(tmp_path), "--source", str(src), "--prompt", str(prm),
                           "--output_dir", str(tmp_path / "out")]) == 0
    assert load_audio(tmp_path / "out" / "src_to_prm.wav", None).shape == sources[1].shape


def test_vocoder_precision_setting_reaches_the_generator(tmp_path, clips, monkeypatch):
    """``infer.vocoder_precision=bfloat16`` runs the generator's AMP convolutions in bfloat16: close to float32,
    not equal (the CPU check is patched so that machines without native bfloat16 run it too, emulated)."""
    import modules.vocoders.amp as amp

    monkeypatch.setattr(amp, "cpu_bf16_instructions", lambda: ("avx512_bf16",))
    sources, prompts = clips
    model = _tiny_model(seed=5)
    cfg = {"model_type": "hierspeechpp", "model": to_dict(model.config),
           "data": {"ssl": {"random_tiny_dim": SSL_DIM, "layer": SSL_LAYER}}}
    save_checkpoint(tmp_path / "checkpoints", 1, models={"generator": model}, config=cfg)
    pair = ([Audio(sources[0], SAMPLE_RATE)], [Audio(prompts[0], SAMPLE_RATE)])
    ref = load_pipeline(tmp_path, ["infer.noise_scale=0.0"]).convert(*pair)[0].waveform
    low_pipe = load_pipeline(tmp_path, ["infer.noise_scale=0.0", "infer.vocoder_precision=bfloat16"])
    assert all(b.conv_dtype == torch.bfloat16 for b in low_pipe.converter.model.modules()
               if isinstance(b, amp.AMPBlock))
    low = low_pipe.convert(*pair)[0].waveform
    assert low.shape == ref.shape and not np.array_equal(low, ref)
    assert 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((low - ref).astype(np.float64) ** 2)) > 25.0


def test_cli_says_which_vc_inputs_it_converted(tmp_path, clips, caplog):
    """A 48 kHz stereo source is downmixed and resampled to 16 kHz, and the run says so, naming the item and the
    file; a 16 kHz mono prompt passes silently."""
    import logging

    import soundfile as sf

    sources, prompts = clips
    model = _tiny_model(seed=6)
    cfg = {"model_type": "hierspeechpp", "model": to_dict(model.config),
           "data": {"ssl": {"random_tiny_dim": SSL_DIM, "layer": SSL_LAYER}}}
    save_checkpoint(tmp_path / "checkpoints", 1, models={"generator": model}, config=cfg)
    t = np.arange(24000) / 48000.0
    sf.write(tmp_path / "src.wav", 0.3 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1),
             48000)
    prm = save_audio(tmp_path / "prm.wav", prompts[1], SAMPLE_RATE)
    with caplog.at_level(logging.WARNING):
        assert infer_cli.main(["--ckpt_dir", str(tmp_path), "--source", str(tmp_path / "src.wav"), "--prompt",
                               str(prm), "--output_dir", str(tmp_path / "out")]) == 0
    said = [r.getMessage() for r in caplog.records if "downmixed" in r.getMessage() or "resampled" in r.getMessage()]
    assert said == [f"src_to_prm (source {tmp_path / 'src.wav'}): 2 channels downmixed to mono, resampled from "
                    f"48000 Hz to the model's 16000 Hz"]


@pytest.mark.slow
def test_onnxruntime_backend_equals_torch(tmp_path, clips, monkeypatch):
    """``backend="onnxruntime"``: the synthesizer's exported style and synthesis graphs behind the same task API
    (F0, SSL, mel and the seeded noise in Python): a batch of three pairs of different lengths at the default
    temperature gives the torch pipeline's waveforms within 1e-4. The graphs are exported once per weights
    file, beside the checkpoint, and reused; bfloat16 and devices other than the CPU are refused by name; the CLI
    takes ``--backend onnxruntime``."""
    import models.tts.hierspeechpp.onnx_runtime as runtime
    from modules.vocoders.amp import PrecisionError

    sources, prompts = clips
    model = _tiny_model(seed=7)
    cfg = {"model_type": "hierspeechpp", "model": to_dict(model.config),
           "data": {"ssl": {"random_tiny_dim": SSL_DIM, "layer": SSL_LAYER}}}
    save_checkpoint(tmp_path / "checkpoints", 1, models={"generator": model}, config=cfg)
    pairs = ([Audio(s, SAMPLE_RATE) for s in sources], [Audio(p, SAMPLE_RATE) for p in prompts])
    torch_out = load_pipeline(tmp_path, ["infer.batch_size=3"]).convert(*pairs)
    on_graphs = load_pipeline(tmp_path, ["infer.batch_size=3"], backend="onnxruntime")
    assert on_graphs.converter.backend == "onnxruntime"
    onnx_out = on_graphs.convert(*pairs)
    for src, ours, reference in zip(sources, onnx_out, torch_out):
        assert ours.waveform.shape == reference.waveform.shape == src.shape
        assert float(np.abs(ours.waveform - reference.waveform).max()) <= 1e-4
    assert float(np.abs(onnx_out[0].waveform[:6000] - onnx_out[1].waveform).max()) > 1e-3
    (graphs,) = tmp_path.glob("checkpoints/step_*/onnx/*-hierspeechpp-v*")
    assert sorted(p.name for p in graphs.iterdir()) == ["style.onnx", "synthesis.onnx"]

    def no_export(*_args):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "export_runtime", no_export)
    again = load_pipeline(tmp_path, ["infer.noise_scale=0.0"], backend="onnxruntime")  # from the cache
    assert again.convert(pairs[0][:1], pairs[1][:1])[0].waveform.shape == sources[0].shape
    with pytest.raises(PrecisionError, match="needs the torch backend"):
        load_pipeline(tmp_path, ["infer.vocoder_precision=bfloat16"], backend="onnxruntime")
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_pipeline(tmp_path, backend="onnxruntime", device="cuda")
    src = save_audio(tmp_path / "src.wav", sources[2], SAMPLE_RATE)
    prm = save_audio(tmp_path / "prm.wav", prompts[2], SAMPLE_RATE)
    assert infer_cli.main(["--ckpt_dir", str(tmp_path), "--backend", "onnxruntime", "--source", str(src),
                           "--prompt", str(prm), "--output_dir", str(tmp_path / "out")]) == 0
    written = load_audio(tmp_path / "out" / "src_to_prm.wav", None)  # the pair alone: it draws seed + 0
    alone = load_pipeline(tmp_path).convert([pairs[0][2]], [pairs[1][2]])[0].waveform
    assert written.shape == sources[2].shape and float(np.abs(written - alone).max()) < 1e-3  # PCM16 rounding
