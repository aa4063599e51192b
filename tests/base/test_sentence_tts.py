"""The shared per-text TTS loop (models/base/sentence_tts.py): WaveGrad 2 and Glow-WaveGAN (tiny random models)
speak a long text sentence by sentence, each sentence seeded as when spoken alone, joined with pauses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.base.sentence_tts import SentenceTTS
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig, WaveGANExperimentConfig
from models.tts.glow_wavegan.inference import GlowWaveGANSynthesizer
from models.tts.glow_wavegan.vae import WaveGANVAE
from models.tts.wavegrad2.config import WaveGrad2ExperimentConfig
from models.tts.wavegrad2.inference import WaveGrad2TTS
from models.tts.wavegrad2.model import WaveGrad2
from processors.text.frontend import TextError
from tests.helpers import REPO_ROOT
from utils.config import load_config, validate

FIRST, SECOND = "A cat sat on the mat.", "Dogs ran far away."


def _wavegrad2() -> WaveGrad2TTS:
    cfg = validate(load_config(REPO_ROOT / "models/tts/wavegrad2/configs/tiny.json5", ["infer.steps=2"]),
                   WaveGrad2ExperimentConfig)
    torch.manual_seed(0)
    return WaveGrad2TTS(WaveGrad2.from_config(cfg.model), cfg.data, cfg.infer)


def _glow_wavegan() -> GlowWaveGANSynthesizer:
    configs = REPO_ROOT / "models/tts/glow_wavegan/configs"
    vae_cfg = validate(load_config(configs / "vae_tiny.json5"), WaveGANExperimentConfig)
    cfg = validate(load_config(configs / "tiny.json5"), GlowWaveGANExperimentConfig)
    torch.manual_seed(0)
    return GlowWaveGANSynthesizer(GlowTTS.from_config(cfg.model), WaveGANVAE.from_config(vae_cfg.model), cfg.data,
                                  vae_cfg.data.sample_rate)


@pytest.fixture(scope="module", params=["wavegrad2", "glow_wavegan"])
def tts(request) -> SentenceTTS:
    return {"wavegrad2": _wavegrad2, "glow_wavegan": _glow_wavegan}[request.param]()


def test_long_text_is_spoken_sentence_by_sentence(tts) -> None:
    tts.settings.max_sentence_chars = 30  # the two sentences do not fit together
    tts.settings.pause_seconds = 0.1
    joined = tts.synthesize([f"{FIRST} {SECOND}"], seed=7)[0].waveform
    first = tts.synthesize([FIRST], seed=7)[0].waveform  # piece i of a text draws from its seed + i
    second = tts.synthesize([SECOND], seed=8)[0].waveform
    pause = int(round(0.1 * tts.sample_rate))
    assert first.size > 0 and second.size > 0
    assert joined.size == first.size + pause + second.size
    assert np.array_equal(joined[: first.size], first) and np.array_equal(joined[first.size + pause:], second)
    assert not joined[first.size: first.size + pause].any()
    chunks = [c.waveform for c in tts.synthesize_stream(f"{FIRST} {SECOND}", seed=7)]  # streaming: same loop
    assert len(chunks) == 3 and np.array_equal(np.concatenate(chunks), joined)
    # within the bound the text is spoken whole (the families' single pass), not cut at the sentence end
    tts.settings.max_sentence_chars = 300
    whole = tts.synthesize([f"{FIRST} {SECOND}"], seed=7)[0].waveform
    assert whole.size != joined.size


def test_seeds_items_and_unreadable_pieces(tts) -> None:
    tts.settings.max_sentence_chars = 30
    texts = [FIRST, f"{SECOND} {FIRST}"]
    both = tts.synthesize(texts, seed=3)
    alone = tts.synthesize([texts[1]], seed=tts.item_seed(3, 1))[0]  # what the batch runner relies on
    assert np.array_equal(both[1].waveform, alone.waveform)
    assert not np.array_equal(tts.synthesize([FIRST], seed=3)[0].waveform, tts.synthesize([FIRST], seed=4)[0].waveform)
    # a piece without speakable content inside a longer text is skipped; a text with none fails naming it
    assert np.array_equal(tts.synthesize([f"{FIRST} ... -- ... -- ..."], seed=3)[0].waveform, both[0].waveform)
    for bad in ("", "?! ...", None):
        with pytest.raises(TextError):
            tts.synthesize([bad], seed=3)
    with pytest.raises(ValueError, match="prompt"):
        tts.synthesize([FIRST], prompts=["x.wav"])
