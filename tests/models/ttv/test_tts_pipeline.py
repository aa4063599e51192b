"""Zero-shot TTS end to end with tiny random models: text -> TTV -> synthesizer -> SpeechSR; bad text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bins import infer as infer_cli
from models.base.checkpoint import save_checkpoint
from models.base.tasks import Audio
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.ttv.hierspeechpp_ttv.inference import load_tts, tts as tts_call
from models.ttv.hierspeechpp_ttv.model import TextToVec
from models.base.text_split import split_sentences
from models.ttv.hierspeechpp_ttv.tts import TTSOptions, ZeroShotTTS
from processors.audio import load_audio
from processors.text.frontend import TextError, TextFrontend
from tests.helpers import MINI_CORPUS
from utils.config import to_dict

SSL = 32
SYNTH = dict(hidden_channels=32, filter_channels=64, upsample_initial_channel=64, resblock_kernel_sizes=[3],
             resblock_dilation_sizes=[[1, 3, 5]], ssl_channels=SSL)
TTV = dict(inter_channels=16, hidden_channels=16, ssl_channels=SSL)


def _models():
    torch.manual_seed(0)
    return TextToVec.from_config(TTV), HierSpeechPPSynthesizer.from_config(SYNTH)


@pytest.fixture(scope="module")
def tts():
    return ZeroShotTTS(*_models())


@pytest.fixture(scope="module")
def prompt():
    return load_audio(MINI_CORPUS / "hierspeechpp_examples" / "reference_4.wav", 16000)


def test_paragraph_sentences_pauses_and_seeds(tts, prompt) -> None:
    opts = TTSOptions(pause_seconds=0.25)
    one = tts.synthesize("The army found the people.", prompt, opts)
    two = tts.synthesize("The army found the people. They were poor!", prompt, opts)
    assert one.dtype == np.float32 and one.ndim == 1 and one.size % 320 == 0
    assert np.isclose(np.abs(two).max(), 0.999, atol=1e-4)  # official "max" normalisation
    # sentence 1 alone + pause + sentence 2: the pause is real silence between the two parts
    n1 = one.size
    assert two.size > n1 + 4000 and np.abs(two[n1:n1 + 4000]).max() == 0.0
    # seeds: reproducible, and other seeds give other speech
    assert np.array_equal(two, tts.synthesize("The army found the people. They were poor!", prompt, opts))
    other = tts.synthesize("The army found the people.", prompt, TTSOptions(seed=7))
    assert other.size != one.size or not np.allclose(other, one)


def test_many_texts_and_output_rates(tts, prompt) -> None:
    texts = ["Hello there.", "Thus did this father comfort her?"]
    many = tts.synthesize_many(texts, prompt)
    assert len(many) == 2
    assert np.array_equal(many[1], tts.synthesize(texts[1], prompt, text_index=1))
    base = tts.synthesize(texts[0], prompt, TTSOptions(scale_norm="none"))
    up = tts.synthesize(texts[0], prompt, TTSOptions(output_rate=24000, scale_norm="none"))
    assert up.size == int(base.size * 1.5)
    short_prompt = prompt[:8000]  # 0.5 s: replicated to 3 s for the style encoders
    assert tts.synthesize(texts[0], short_prompt).size > 0


def test_bad_text(tts, prompt) -> None:
    for text in ("", "   ", "?!... --", ". . ."):
        with pytest.raises(TextError):
            tts.synthesize(text, prompt)
    with pytest.raises(TextError, match="string"):
        tts.synthesize(None, prompt)  # type: ignore[arg-type]
    # characters an English voice cannot speak are an error naming them, unless the user asks to drop them
    with pytest.raises(TextError, match="SNOWMAN"):
        tts.synthesize("Snow ☃ and 漢字 fall.", prompt)
    assert tts.synthesize("Snow ☃ and 漢字 fall.", prompt, TTSOptions(drop_unspeakable=True)).size > 0
    with pytest.raises(ValueError, match="output_rate"):
        tts.synthesize("Hi.", prompt, TTSOptions(output_rate=22050))


def test_ten_thousand_characters_are_split_into_speakable_sentences() -> None:
    sentence = "When a man looks for something beyond his reach, his friends say he is looking for gold. "
    text = (sentence * (10000 // len(sentence) + 1))[:10000]
    pieces = split_sentences(text, 300)
    assert len(pieces) >= 100 and max(len(p) for p in pieces) <= 300
    frontend = TextFrontend(on_unknown="warn")
    lengths = [len(frontend(p)["ids"]) for p in pieces[:5]]
    assert max(lengths) <= 200  # within what the TTV was trained on
    no_punct = "word " * 2000  # no sentence end at all: cut between words
    assert max(len(p) for p in split_sentences(no_punct, 300)) <= 300


def test_cli_writes_one_file_per_text(tmp_path, prompt) -> None:
    ttv, synth = _models()
    save_checkpoint(tmp_path / "ttv" / "checkpoints", 1, models={"ttv": ttv},
                    config={"model_type": "hierspeechpp_ttv", "model": to_dict(ttv.config)})
    save_checkpoint(tmp_path / "syn" / "checkpoints", 1, models={"generator": synth},
                    config={"model_type": "hierspeechpp", "model": to_dict(synth.config)})
    direct = load_tts(tmp_path / "ttv", tmp_path / "syn").synthesize("Hello there.", prompt)
    prompt_path = MINI_CORPUS / "hierspeechpp_examples" / "reference_4.wav"
    rc = infer_cli.main(["--ckpt_dir", str(tmp_path / "ttv"), "--synthesizer", str(tmp_path / "syn"),
                         "--prompt", str(prompt_path), "--text", "Hello there.", "?!", "--output_dir",
                         str(tmp_path / "out")])
    assert rc == 1  # one text failed
    written = load_audio(tmp_path / "out" / "tts_0000.wav", 16000)
    assert written.size == direct.size and np.abs(written - direct).max() < 1e-3  # PCM16 rounding
    assert "tts_0001" not in {p.stem for p in (tmp_path / "out").glob("*.wav")}
    (bad_list,) = (tmp_path / "out").glob("bad_items_*.tsv")
    assert "?!" in bad_list.read_text() and "the English front end cannot read this text" in bad_list.read_text()
    # one-call API with paths, at 24 kHz: same speech as the 16 kHz pipeline output, upsampled
    up = tts_call("Hello there.", prompt_path, tmp_path / "ttv", tmp_path / "syn", output_rate=24000)
    assert up.size == int(direct.size * 1.5) and np.isclose(np.abs(up).max(), 0.999, atol=1e-4)


@pytest.mark.slow
def test_onnxruntime_backend_equals_torch(tmp_path, prompt) -> None:
    """``backend="onnxruntime"``: the TTV's style, duration and feature graphs and the synthesizer's style and
    synthesis graphs behind the same task API, the noises drawn in Python from the sentence's seed: two texts of
    two sentences at the default temperatures give the torch pipeline's speech within 1e-4 (same lengths, so the
    same durations). A TTV on one backend and a synthesizer on the other are refused, and so is bfloat16; the CLI
    takes ``--backend onnxruntime``."""
    from models.base.pipeline import load_pipeline
    from models.ttv.hierspeechpp_ttv.onnx_runtime import runtime_for
    from modules.vocoders.amp import PrecisionError

    ttv, synth = _models()
    save_checkpoint(tmp_path / "ttv" / "checkpoints", 1, models={"ttv": ttv},
                    config={"model_type": "hierspeechpp_ttv", "model": to_dict(ttv.config)})
    save_checkpoint(tmp_path / "syn" / "checkpoints", 1, models={"generator": synth},
                    config={"model_type": "hierspeechpp", "model": to_dict(synth.config)})
    spec = {"pipeline": "hierspeechpp_tts", "components": {"ttv": str(tmp_path / "ttv"),
                                                           "synthesizer": str(tmp_path / "syn")}}
    texts = ["The army found the people. They were poor!", "Thus did this father comfort her?"]
    voice = Audio(prompt, 16000)
    reference = load_pipeline(spec).synthesize(texts, prompts=[voice])
    on_graphs = load_pipeline(spec, backend="onnxruntime")
    assert on_graphs.engine.backend == "onnxruntime"
    ours = on_graphs.synthesize(texts, prompts=[voice])
    for a, b in zip(ours, reference):
        assert a.sample_rate == b.sample_rate == 16000 and a.waveform.shape == b.waveform.shape
        assert float(np.abs(a.waveform - b.waveform).max()) <= 1e-4
    assert {p.name for p in tmp_path.glob("ttv/checkpoints/step_*/onnx/*-hierspeechpp-ttv-v*/*.onnx")} == \
        {"style.onnx", "durations.onnx", "features.onnx"}
    with pytest.raises(ValueError, match="different backends"):
        ZeroShotTTS(runtime_for(ttv, tmp_path / "ttv"), synth)
    with pytest.raises(PrecisionError, match="needs the torch backend"):
        on_graphs.engine.set_vocoder_precision("bfloat16")
    rc = infer_cli.main(["--ckpt_dir", str(tmp_path / "ttv"), "--synthesizer", str(tmp_path / "syn"),
                         "--backend", "onnxruntime", "--prompt", str(MINI_CORPUS / "hierspeechpp_examples" /
                                                                      "reference_4.wav"),
                         "--text", texts[1], "--output_dir", str(tmp_path / "out")])
    written = load_audio(tmp_path / "out" / "tts_0000.wav", 16000)
    alone = load_pipeline(spec).synthesize(texts[1:], prompts=[voice])[0].waveform  # text 0 of its call
    assert rc == 0 and written.shape == alone.shape and float(np.abs(written - alone).max()) < 1e-3
