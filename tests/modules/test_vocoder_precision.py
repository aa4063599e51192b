"""The opt-in bfloat16 AMP-block convolutions (``set_vocoder_precision``) and the fused kernel's bfloat16 input and
output: what they compute, what they leave alone, and the one-line refusals.

bfloat16 here is a deviation by design, so the assertions bound it (an SNR to the float32 path) instead of
asking for equality; the float32 path must stay exactly what it was. The CPU check is patched where a test needs
bfloat16 to run on a machine without native bfloat16 instructions (oneDNN then emulates it: slow, same numbers).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modules.vocoders.amp as amp
from modules import fused_snake
from modules.activations import SnakeBeta
from modules.alias_free import Activation1d, _polyphase_up_taps, set_polyphase
from modules.vocoders.amp import (AMPBlock, PrecisionError, average_blocks, build_amp_blocks,
                                  set_channels_last_inference, set_vocoder_precision)
from modules.weight_norm import fold_weight_norm
from tests.helpers import randomize_amp_blocks

pytestmark = pytest.mark.skipif(not fused_snake.available(), reason="numba is not installed")


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(amp, "cpu_bf16_instructions", lambda: ("avx512_bf16",))


def _snr(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.double().pow(2).sum() / (ours.double() - reference.double()).pow(2).sum()))


def _blocks(channels: int = 16, seed: int = 0):
    torch.manual_seed(seed)
    blocks = build_amp_blocks([channels], [3, 7, 11], [[1, 3, 5]] * 3).eval().requires_grad_(False)
    randomize_amp_blocks(blocks)
    fold_weight_norm(blocks)
    set_polyphase(blocks)
    set_channels_last_inference(blocks)
    return blocks


def test_bfloat16_blocks_stay_close_to_float32_and_leave_their_input_alone(native_bf16):
    blocks = _blocks()
    x = torch.randn(1, 16, 3000) * 0.5
    with torch.no_grad():
        ref = average_blocks(x, blocks, 0, 3)
        assert set_vocoder_precision(blocks, "bfloat16") == 3
        x_before = x.clone()
        low = average_blocks(x, blocks, 0, 3)
        assert torch.equal(x, x_before)
        assert low.dtype == torch.float32 and low.shape == ref.shape
        # bfloat16 keeps 8 significant bits: ~50 dB for these random blocks, far from float32's ~130 dB
        snr = _snr(low, ref)
        assert 35.0 < snr < 80.0, snr
        assert set_vocoder_precision(blocks, "float32") == 3
        assert torch.equal(average_blocks(x, blocks, 0, 3), ref)  # back to the exact float32 numbers


def test_bfloat16_touches_only_channels_last_inference(native_bf16):
    blocks = _blocks(8)
    x = torch.randn(1, 8, 500)
    with torch.no_grad():
        ref = blocks[0](x)  # (B, C, T) path, float32
        set_vocoder_precision(blocks, "bfloat16")
        assert torch.equal(blocks[0](x), ref)  # the standard forward ignores the setting
        set_channels_last_inference(blocks, False)
        assert set_vocoder_precision(blocks, "bfloat16") == 0  # no block would run it
    y = average_blocks(x.requires_grad_(), blocks, 0, 3)  # training/autograd: float32 standard path
    assert y.dtype == torch.float32 and y.requires_grad


def test_cast_weights_are_cached_and_follow_a_weight_change(native_bf16):
    blocks = _blocks(8)
    set_vocoder_precision(blocks, "bfloat16")
    x = torch.randn(1, 8, 400)
    with torch.no_grad():
        average_blocks(x, blocks, 0, 3)
        conv = blocks[0].convs1[0]
        cached = conv._channels_last_weights[1][0]
        average_blocks(x, blocks, 0, 3)
        assert conv._channels_last_weights[1][0] is cached  # one cast per weight, not per call
        conv.weight.mul_(2.0)  # an in-place change (a state_dict load is one)
        average_blocks(x, blocks, 0, 3)
        assert torch.equal(conv._channels_last_weights[1][0].float(), conv.weight.detach().unsqueeze(2).bfloat16().float())


def test_unknown_precision_and_cpu_without_bf16_are_refused(monkeypatch):
    blocks = _blocks(4)
    with pytest.raises(PrecisionError, match="vocoder_precision 'fp16': choose one of float32, bfloat16"):
        set_vocoder_precision(blocks, "fp16")
    monkeypatch.setattr(amp, "cpu_bf16_instructions", lambda: ())
    with pytest.raises(PrecisionError, match="no native bfloat16 instructions"):
        set_vocoder_precision(blocks, "bfloat16")
    assert all(block.conv_dtype is None for block in blocks)  # nothing half-switched
    assert set_vocoder_precision(blocks, "float32") == 3


def _activation(channels: int, seed: int) -> Activation1d:
    torch.manual_seed(seed)
    module = Activation1d(SnakeBeta(channels, alpha_logscale=True)).eval().requires_grad_(False)
    module.act.alpha.normal_(0, 1.0)
    module.act.beta.normal_(0, 0.5)
    return module


def _run(module: Activation1d, rows: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    even, odd = _polyphase_up_taps(module.upsample.filter)
    freq, inv_mag = module.act.coefficients()
    out = torch.empty(rows.shape, dtype=out_dtype)
    return fused_snake.anti_aliased_snakebeta_nwc(rows, even, odd, module.downsample.lowpass.filter.reshape(-1),
                                                  freq, inv_mag, out=out)


@pytest.mark.parametrize("channels,length", [(1, 1), (3, 7), (16, 33), (32, 1100)])
def test_kernel_bfloat16_output_is_the_rounded_float32_output(channels, length):
    module = _activation(channels, length)
    rows = torch.randn(2, length, channels) * 2
    f32 = _run(module, rows, torch.float32)
    b16 = _run(module, rows, torch.bfloat16)
    assert b16.dtype == torch.bfloat16
    assert torch.equal(b16, f32.to(torch.bfloat16))  # round to nearest even, as torch's cast


@pytest.mark.parametrize("channels,length", [(1, 2), (5, 9), (16, 600)])
def test_kernel_reads_bfloat16_input_as_its_float32_value(channels, length):
    module = _activation(channels, 100 + length)
    rows = (torch.randn(1, length, channels) * 2).to(torch.bfloat16)
    widened = _run(module, rows.float(), torch.float32)
    assert torch.equal(_run(module, rows, torch.float32), widened)
    assert torch.equal(_run(module, rows, torch.bfloat16), widened.to(torch.bfloat16))


def test_kernel_refuses_other_dtypes_and_mismatched_outputs():
    module = _activation(4, 0)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        _run(module, torch.randn(1, 10, 4).double(), torch.float32)
    with pytest.raises(ValueError, match="out must be"):
        _run(module, torch.randn(1, 10, 4), torch.float16)


def test_speechsr_released_weights_in_bfloat16_on_real_speech(native_bf16):
    """The bundled SpeechSR-48k on a real recording: bfloat16 within ~40 dB of float32 over the whole band."""
    from models.sr.speechsr.model import SpeechSR
    from processors.audio import load_audio
    from tests.helpers import MINI_CORPUS

    wav = load_audio(MINI_CORPUS / "hierspeechpp_examples" / "reference_1.wav", 16000)
    x = torch.from_numpy(np.ascontiguousarray(wav[:16000])).view(1, 1, -1)
    model = SpeechSR.from_pretrained(48000).optimize_for_inference(chunk_size=4096)
    with torch.no_grad():
        ref = model(x)
        set_vocoder_precision(model, "bfloat16")
        low = model(x)
    assert low.shape == ref.shape and low.dtype == torch.float32
    assert _snr(low, ref) > 35.0


def test_tts_engine_switches_synthesizer_and_speechsr(native_bf16):
    """``TTSOptions(vocoder_precision=...)`` reaches the synthesizer's generator and the SpeechSR it loads; the
    float32 output is unchanged by a bfloat16 call in between."""
    from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
    from models.ttv.hierspeechpp_ttv.model import TextToVec
    from models.ttv.hierspeechpp_ttv.tts import TTSOptions, ZeroShotTTS
    from processors.audio import load_audio
    from tests.helpers import MINI_CORPUS

    torch.manual_seed(0)
    ttv = TextToVec.from_config(dict(inter_channels=16, hidden_channels=16, ssl_channels=32))
    synth = HierSpeechPPSynthesizer.from_config(dict(
        hidden_channels=32, filter_channels=64, upsample_initial_channel=64, resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3, 5]], ssl_channels=32))
    engine = ZeroShotTTS(ttv, synth)
    prompt = load_audio(MINI_CORPUS / "hierspeechpp_examples" / "reference_4.wav", 16000)
    text = "The army found the people."
    ref = engine.synthesize(text, prompt, TTSOptions(output_rate=24000))
    low = engine.synthesize(text, prompt, TTSOptions(output_rate=24000, vocoder_precision="bfloat16"))
    sr_blocks = [m for m in engine.upsampler(24000).inference.model_for(24000).modules() if isinstance(m, AMPBlock)]
    assert sr_blocks and all(b.conv_dtype == torch.bfloat16 for b in sr_blocks)
    assert all(b.conv_dtype == torch.bfloat16 for b in synth.modules() if isinstance(b, AMPBlock))
    assert low.shape == ref.shape and not np.array_equal(low, ref)
    assert _snr(torch.from_numpy(low), torch.from_numpy(ref)) > 25.0
    assert np.array_equal(engine.synthesize(text, prompt, TTSOptions(output_rate=24000)), ref)
    assert all(b.conv_dtype is None for b in sr_blocks)


def test_speechsr_pipeline_refuses_bfloat16_off_the_torch_fast_path(native_bf16, capsys):
    from bins import infer as infer_cli
    from models.sr.speechsr.inference import SpeechSRInference

    with pytest.raises(PrecisionError, match="torch backend with fast=True"):
        SpeechSRInference.pretrained(fast=False, vocoder_precision="bfloat16")
    code = infer_cli.main(["--model_type", "speechsr", "--inputs", "missing.wav", "--output_dir", "unused",
                           "--set", "infer.vocoder_precision=half"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("echelon-infer: infer.vocoder_precision='half': must be one of float32, bfloat16")


def test_tts_engine_refusal_switches_nothing(monkeypatch):
    from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
    from models.ttv.hierspeechpp_ttv.model import TextToVec
    from models.ttv.hierspeechpp_ttv.tts import ZeroShotTTS

    torch.manual_seed(0)
    engine = ZeroShotTTS(TextToVec.from_config(dict(inter_channels=16, hidden_channels=16, ssl_channels=32)),
                         HierSpeechPPSynthesizer.from_config(dict(
                             hidden_channels=32, filter_channels=64, upsample_initial_channel=64,
                             resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]], ssl_channels=32)))
    engine.upsampler(24000)
    monkeypatch.setattr(amp, "cpu_bf16_instructions", lambda: ())
    with pytest.raises(PrecisionError, match="no native bfloat16"):
        engine.set_vocoder_precision("bfloat16")
    blocks = [m for m in engine.synthesizer.modules() if isinstance(m, AMPBlock)]
    blocks += [m for m in engine.upsampler(24000).inference.model_for(24000).modules() if isinstance(m, AMPBlock)]
    assert blocks and all(b.conv_dtype is None for b in blocks) and engine.vocoder_precision == "float32"


def test_preparing_again_keeps_the_precision_and_the_engine_reads_it(native_bf16):
    """A model switched to bfloat16 and prepared again (as ZeroShotTTS / VoiceConverter do) keeps bfloat16 unless
    told otherwise, and the TTS engine starts from what its synthesizer has."""
    from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
    from models.ttv.hierspeechpp_ttv.model import TextToVec
    from models.ttv.hierspeechpp_ttv.tts import ZeroShotTTS
    from modules.vocoders.amp import vocoder_precision_of

    torch.manual_seed(0)
    synth = HierSpeechPPSynthesizer.from_config(dict(
        hidden_channels=32, filter_channels=64, upsample_initial_channel=64, resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3, 5]], ssl_channels=32))
    assert vocoder_precision_of(synth.prepare_for_inference(vocoder_precision="bfloat16")) == "bfloat16"
    engine = ZeroShotTTS(TextToVec.from_config(dict(inter_channels=16, hidden_channels=16, ssl_channels=32)), synth)
    assert vocoder_precision_of(synth) == "bfloat16" and engine.vocoder_precision == "bfloat16"
    assert vocoder_precision_of(synth.prepare_for_inference(vocoder_precision="float32")) == "float32"
