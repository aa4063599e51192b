"""Piper voices in Echelon's VITS: waveforms against onnxruntime (the installed joe voice, and a tiny
multi-speaker resblock-1 16 kHz voice exported here the way Piper exports), the converted checkpoint through
``echelon-infer``, and bad input. Phoneme ids against the piper-tts runtime: test_piper_runtime_ids.py."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np
import onnxruntime
import pytest
import soundfile as sf
import torch

from bins import convert_piper as convert_cli
from bins import infer as infer_cli
from models.base import checkpoint as ckpt
from models.tts.vits.model import VITS
from models.tts.vits.piper import (
    TRAINING_ONLY,
    PiperConversionError,
    convert_piper,
    installed_voice,
    warn_if_reinitialised,
)
from models.base.pipeline import load_pipeline
from models.tts.vits.inference import VITSTextToSpeech
from modules.weight_norm import fold_weight_norm
from processors.text.piper_phonemes import PiperPhonemeFrontend

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world; this is a test: does it work?",
    "Is it 42 or 1,234? Nobody knows!",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "Façade and naïve are borrowed words.",
]
JOE = installed_voice("joe")
VOICE_MAP: Dict[str, List[int]] = json.loads(Path(str(JOE) + ".json").read_text())["phoneme_id_map"]


def onnx_waveform(onnx_path: Path, ids: List[int], sid: int | None = None) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options)
    feeds = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
             "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32)}
    if sid is not None:
        feeds["sid"] = np.array([sid], dtype=np.int64)
    return session.run(None, feeds)[0].reshape(-1)


def echelon_waveform(pipeline: VITSTextToSpeech, ids: List[int], sid: int | None = None) -> np.ndarray:
    model = pipeline.synth.model
    with torch.no_grad():
        out = model.infer(torch.tensor([ids]), torch.tensor([len(ids)]),
                          sid=None if sid is None else torch.tensor([sid]), noise_scale=0.0, noise_scale_w=0.0)
    return out["wav"].reshape(-1).numpy()


def test_unknown_symbols_are_reported_not_dropped() -> None:
    reduced = {k: v for k, v in VOICE_MAP.items() if k != "ð"}
    with pytest.raises(ValueError, match="'ð'"):
        PiperPhonemeFrontend(reduced)("the other one")
    assert PiperPhonemeFrontend(reduced, on_unknown="warn")("the other one")["ids"]


@pytest.fixture(scope="module")
def joe_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("joe") / "voice"
    assert convert_cli.main([str(JOE), str(out)]) == 0
    return out


def test_joe_waveform_equals_onnxruntime_at_zero_noise(joe_dir) -> None:
    torch.set_num_threads(1)
    pipeline = load_pipeline(joe_dir)
    assert pipeline.synth.sample_rate == 22050
    for text in SENTENCES[:2]:
        ids = pipeline.synth.frontend(text)["ids_blank"]
        ours, reference = echelon_waveform(pipeline, ids), onnx_waveform(JOE, ids)
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() <= 1e-3


def test_sentences_are_spoken_one_by_one_alike_on_both_backends_and_streamed(joe_dir) -> None:
    """Piper speaks sentence by sentence, joined with no pause; so does a Piper voice here, each sentence drawing
    the same noise one-shot on torch and on onnxruntime (one item at a time) and streamed."""
    torch.set_num_threads(1)
    text = "Dr. Smith lives here. Is he in? Yes!"
    torch_pipeline, ort_pipeline = load_pipeline(joe_dir, backend="torch"), load_pipeline(joe_dir)
    sentences = torch_pipeline.synth.frontend(text)["sentences"]
    assert len(sentences) == 4 and torch_pipeline.synth.text_sequences(text) == sentences
    alone = [torch_pipeline.synth.synthesize([text], noise_scale=0, noise_scale_w=0)[0]]
    alone += [echelon_waveform(torch_pipeline, ids) for ids in sentences]
    assert alone[0].size == sum(w.size for w in alone[1:])
    assert np.abs(alone[0] - np.concatenate(alone[1:])).max() <= 1e-4
    one_shot = torch_pipeline.synthesize([text], seed=7)[0].waveform
    streamed = np.concatenate([a.waveform for a in torch_pipeline.synthesize_stream(text, seed=7)])
    on_ort = ort_pipeline.synthesize([text], seed=7)[0].waveform
    assert one_shot.shape == streamed.shape == on_ort.shape
    assert np.abs(one_shot - streamed).max() <= 1e-4 and np.abs(one_shot - on_ort).max() <= 1e-3


def test_converted_checkpoint_says_what_was_reinitialised(joe_dir, caplog) -> None:
    path = ckpt.resolve_checkpoint_dir(joe_dir)
    meta = ckpt.read_meta(path)
    assert set(meta["piper"]["reinitialised"]) == set(TRAINING_ONLY)
    with caplog.at_level("WARNING"):
        assert set(warn_if_reinitialised(joe_dir)) == set(TRAINING_ONLY)  # what the VITS trainer calls on init
    assert "enc_q" in caplog.text and "fresh initialisation" in caplog.text
    config = ckpt.read_config(path)
    assert config["data"]["text_frontend"] == "piper" and config["model"]["resblock"] == "2"
    assert config["model"]["upsample_rates"] == [8, 8, 4]
    assert (joe_dir / "MODEL_CARD").is_file() and (joe_dir / "piper_voice.onnx.json").is_file()


# --------------------------------------------------------------------------- another architecture
TINY = dict(n_vocab=len(VOICE_MAP) + 5, inter_channels=16, hidden_channels=16, filter_channels=32, n_heads=2,
            n_layers=2, kernel_size=3, resblock="1", resblock_kernel_sizes=[3, 5],
            resblock_dilation_sizes=[[1, 3, 5], [1, 2, 4]], upsample_rates=[8, 4, 2], upsample_initial_channel=32,
            upsample_kernel_sizes=[16, 8, 4], n_speakers=3, gin_channels=8, use_sdp=True)
SPEAKERS = {"ann": 0, "bob": 1, "cid": 2}
TINY_TEXT, TINY_SID = "A different voice, spoken by cid.", 2


def export_like_piper(model: VITS, path: Path, ids: List[int], sid: int) -> None:
    """ONNX export as Piper's exporter does it: decoder weight norm removed, the synthesizer's forward = infer
    with (ids, lengths, scales = [noise, length, noise_w], sid), TorchScript exporter, constant folding.

    Our ``infer`` turns lengths into Python ints, so the traced graph keeps the example's output length: the
    example is the utterance compared below, at zero noise."""
    fold_weight_norm(model.dec)
    infer = VITS.infer.__wrapped__  # without torch.no_grad: the exporter traces it

    def forward(text, text_lengths, scales, sid):
        return infer(model, text, text_lengths, sid=sid, noise_scale=scales[0], length_scale=scales[1],
                     noise_scale_w=scales[2])["wav"]

    model.forward = forward
    example = (torch.tensor([ids]), torch.tensor([len(ids)]), torch.tensor([0.0, 1.0, 0.0]), torch.tensor([sid]))
    torch.onnx.export(model, example, str(path), dynamo=False, opset_version=15,
                      input_names=["input", "input_lengths", "scales", "sid"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch", 1: "phonemes"}, "input_lengths": {0: "batch"},
                                    "sid": {0: "batch"}, "output": {0: "batch", 2: "time"}})


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_piper")
    torch.manual_seed(3)
    model = VITS.from_config(TINY).eval()
    with torch.no_grad():  # like trained weights, no two tensors equal (the exporter merges equal initializers)
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    onnx_path = root / "xx_XX-tiny-x_low.onnx"
    with warnings.catch_warnings():  # the exporter warns about Python values it traces as constants
        warnings.simplefilter("ignore")
        export_like_piper(model, onnx_path, PiperPhonemeFrontend(VOICE_MAP)(TINY_TEXT)["ids"], TINY_SID)
    voice = {"audio": {"sample_rate": 16000}, "espeak": {"voice": "en-us"}, "phoneme_type": "espeak",
             "num_symbols": TINY["n_vocab"], "num_speakers": 3, "speaker_id_map": SPEAKERS,
             "phoneme_id_map": VOICE_MAP}
    Path(str(onnx_path) + ".json").write_text(json.dumps(voice))
    return onnx_path


def test_multispeaker_resblock1_16k_voice_converts_exactly(tiny_voice, tmp_path) -> None:
    out = tmp_path / "tiny"
    convert_piper(tiny_voice, out)
    pipeline = load_pipeline(out)
    m, d = pipeline.synth.model.config, pipeline.synth.data
    assert (m.resblock, m.upsample_rates, m.upsample_kernel_sizes) == ("1", [8, 4, 2], [16, 8, 4])
    assert m.resblock_dilation_sizes == [[1, 3, 5], [1, 2, 4]] and m.resblock_kernel_sizes == [3, 5]
    assert (m.n_speakers, m.gin_channels, m.hidden_channels, m.n_layers) == (3, 8, 16, 2)
    assert d.sample_rate == 16000 and d.speakers == ["ann", "bob", "cid"] and d.hop_length == 64
    ids = pipeline.synth.frontend(TINY_TEXT)["ids_blank"]
    ours, reference = echelon_waveform(pipeline, ids, TINY_SID), onnx_waveform(tiny_voice, ids, TINY_SID)
    assert ours.shape == reference.shape and np.abs(reference).max() > 1e-2
    assert np.abs(ours - reference).max() <= 1e-3
    other = echelon_waveform(pipeline, ids, 0)  # the speaker id reaches the model
    assert other.shape != ours.shape or np.abs(other - ours).max() > 1e-3


def test_echelon_infer_speaks_every_line_of_a_text_file(tiny_voice, tmp_path) -> None:
    out = tmp_path / "tiny"
    convert_piper(tiny_voice, out)
    lines = tmp_path / "lines.txt"
    lines.write_text("first|Good morning.\nsecond|How are you today?\n", encoding="utf-8")
    code = infer_cli.main(["--ckpt_dir", str(out), "--text_file", str(lines), "--speaker", "bob",
                           "--output_dir", str(tmp_path / "wavs")])
    assert code == 0
    for uid in ("first", "second"):
        wav, sr = sf.read(tmp_path / "wavs" / f"{uid}.wav")
        assert sr == 16000 and wav.size > 0 and np.isfinite(wav).all()


def test_bad_inputs_are_one_line_errors(tiny_voice, tmp_path, capsys) -> None:
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(tiny_voice.read_bytes())
    assert convert_cli.main([str(lonely), str(tmp_path / "a")]) == 2
    assert "lonely.onnx.json" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    with pytest.raises(PiperConversionError, match="not empty"):
        convert_piper(tiny_voice, busy)
    assert convert_cli.main([str(tmp_path / "missing.onnx"), str(tmp_path / "b")]) == 2
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx at all" * 10)
    Path(str(garbage) + ".json").write_text(Path(str(tiny_voice) + ".json").read_text())
    assert convert_cli.main([str(garbage), str(tmp_path / "c")]) == 2
    assert "garbage.onnx" in capsys.readouterr().err
