"""VITS inference API on official-format files: single-speaker TTS, speaker checks, batching."""

import json

import numpy as np
import pytest
import torch

from models.tts.vits.checkpoint import save_official_checkpoint
from models.tts.vits.config import from_official_config
from models.base.pipeline import load_pipeline
from models.base.tasks import TextToSpeech
from models.tts.vits.inference import VITSSynthesizer
from models.tts.vits.model import VITS

OFFICIAL = {
    "train": {"segment_size": 8192},
    "data": {"text_cleaners": ["english_cleaners2"], "max_wav_value": 32768.0, "sampling_rate": 22050,
             "filter_length": 1024, "hop_length": 256, "win_length": 1024, "n_mel_channels": 80, "mel_fmin": 0.0,
             "mel_fmax": None, "add_blank": True, "n_speakers": 0, "cleaned_text": True},
    "model": {"inter_channels": 8, "hidden_channels": 8, "filter_channels": 16, "n_heads": 2, "n_layers": 1,
              "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3],
              "resblock_dilation_sizes": [[1, 3, 5]], "upsample_rates": [8, 8, 4], "upsample_initial_channel": 16,
              "upsample_kernel_sizes": [16, 16, 8], "n_layers_q": 3, "use_spectral_norm": False},
}


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    model = VITS.from_config(from_official_config(OFFICIAL))
    save_official_checkpoint(model, root / "G_1000.pth", iteration=3)
    (root / "config.json").write_text(json.dumps(OFFICIAL))
    return root


def test_synthesize_from_official_checkpoint(official_files):
    synth = VITSSynthesizer.from_official(official_files / "G_1000.pth")
    assert synth.sample_rate == 22050 and synth.model.n_speakers == 0
    torch.manual_seed(1)
    texts = ["Hello there.", "In being comparatively modern, the sentence is longer."]
    wavs = synth.synthesize(texts, noise_scale=0.0, noise_scale_w=0.0)
    assert len(wavs) == 2 and all(w.dtype == np.float32 and w.size % 256 == 0 and w.size > 0 for w in wavs)
    # Items are decoded on their own frames: a batch gives what each text gives alone.
    for text, wav in zip(texts, wavs):
        alone = synth.synthesize([text], noise_scale=0.0, noise_scale_w=0.0)[0]
        np.testing.assert_allclose(wav, alone, atol=1e-5)
    with pytest.raises(ValueError, match="single speaker"):
        synth.synthesize(texts, speaker="p225")


def test_pipeline_accepts_official_pth(official_files, tmp_path):
    pipeline = load_pipeline({"pipeline": "vits", "components": {"model": str(official_files / "G_1000.pth")}})
    assert isinstance(pipeline, TextToSpeech) and pipeline.synth.model.config.inter_channels == 8
    with pytest.raises(FileNotFoundError, match="config"):
        VITSSynthesizer.from_official(official_files / "G_1000.pth", tmp_path / "missing.json")
