"""A tiny SpeechSR trains a few GAN steps on real clips and its mel loss falls."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import torch

from models.base.tracker import read_log
from models.sr.speechsr.dataset import SuperResolutionDataset
from models.sr.speechsr.config import SpeechSRExperimentConfig
from models.sr.speechsr.trainer import SpeechSRTrainer
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate


def _manifest(tmp_path):
    clips = sorted((MINI_CORPUS / "vctk").glob("p22[5]/*.wav"))[:4]
    assert len(clips) == 4, "mini corpus is incomplete"
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": c.stem, "path": str(c)}) + "\n" for c in clips))
    return path


def test_pairs_are_aligned(tmp_path) -> None:
    ds = SuperResolutionDataset(str(_manifest(tmp_path)), 24000, 2400, seed=1)
    x, y = ds[0]
    assert x.shape == (1, 1600) and y.shape == (1, 2400)
    # the input is the band-limited copy of the target: resampling the target gives it back
    from processors.audio import resample
    low = resample(y[0].numpy(), 24000, 16000)
    core = slice(100, 1500)
    assert np.abs(low[core] - x[0].numpy()[core]).max() < 0.05


def test_tiny_speechsr_trains_with_falling_mel_loss(tmp_path) -> None:
    torch.manual_seed(0)
    raw = load_config(REPO_ROOT / "models/sr/speechsr/configs/speechsr24k.json5", [
        f"data.train_manifest={_manifest(tmp_path)}", "data.segment_samples=2400",
        "model.upsample_initial_channel=8", "model.resblock_kernel_sizes=[3]",
        "model.resblock_dilation_sizes=[[1,3,5]]", "train.batch_size=2", "train.max_steps=6",
        "train.optimizers.default.lr=2e-3", "train.log_every=1", "train.save_every=6", "train.tensorboard=false",
        "train.progress_bar=false",
        # the official 41.6 M-parameter MPD + MS-STFT is too slow for a unit test: one small STFT resolution
        "discriminator.periods=[]", "discriminator.resolutions=[[256,64,256]]"])
    cfg = validate(raw, SpeechSRExperimentConfig)
    trainer = SpeechSRTrainer(cfg, tmp_path / "exp", cpu=True)
    trainer.train()
    log = read_log(tmp_path / "exp")
    mel = [log[s]["loss_mel"] for s in sorted(log)]
    assert len(mel) == 6 and all(np.isfinite(mel))
    assert np.mean(mel[-2:]) < np.mean(mel[:2])
    # the saved checkpoint serves the inference pipeline
    from models.sr.speechsr.inference import SpeechSRInference
    pipe = SpeechSRInference.from_checkpoint(tmp_path / "exp")
    out = pipe.upsample(np.zeros(1600, dtype=np.float32))
    assert out.shape == (2400,)


def test_official_discriminator_layout() -> None:
    """Default config builds the released discriminator: 5 (24 kHz) STFT resolutions then 5 periods."""
    cfg = validate(load_config(REPO_ROOT / "models/sr/speechsr/configs/speechsr24k.json5", []), SpeechSRExperimentConfig)
    assert cfg.discriminator.periods is None and cfg.discriminator.resolutions is None
    assert cfg.train.c_mel == 45.0 and cfg.train.schedulers["default"].gamma == 0.999
    assert cfg.data.segment_samples == 9600
    # build it the way the trainer does (no trainer run needed: build_models only reads cfg and device)
    models = SpeechSRTrainer.build_models(SimpleNamespace(cfg=cfg, device=torch.device("cpu")))
    subs = list(models["discriminator"].discriminators)
    assert [getattr(d, "n_fft", None) for d in subs[:5]] == [2048, 1024, 512, 256, 128]
    assert [getattr(d, "period", None) for d in subs[5:]] == [2, 3, 5, 7, 11]
