"""Glow-WaveGAN stage 1 (VAE-GAN on waveform): shapes, KL, learning on real clips, exact resume."""

import math

import pytest
import torch
from safetensors.torch import load_file

from models.base import checkpoint as ckpt
from models.base.tracker import read_log
from models.tts.glow_wavegan.config import WaveGANExperimentConfig
from models.tts.glow_wavegan.trainer_vae import WaveGANTrainer
from models.tts.glow_wavegan.vae import WaveGANVAE
from modules.wave_encoder import WaveEncoder, gaussian_kl_to_standard_normal
from processors.data.manifest import ManifestEntry, write_manifest
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate

TINY = REPO_ROOT / "models/tts/glow_wavegan/configs/vae_tiny.json5"
CLIPS = ("LJ001-0002", "LJ001-0001")


def _manifest(tmp_path):
    entries = [ManifestEntry(id=name, path=str(MINI_CORPUS / "ljspeech" / f"{name}.wav"), speaker="ljspeech", text="",
                             duration=2.0, sample_rate=16000) for name in CLIPS]
    return write_manifest(entries, tmp_path / "clips.jsonl")


def _cfg(manifest, *overrides):
    raw = load_config(TINY, [f"data.train_manifest={manifest}", "train.batch_size=2", "train.log_every=1", *overrides])
    return validate(raw, WaveGANExperimentConfig)


@pytest.mark.parametrize("frames", [1, 7, 32])
def test_encoder_and_decoder_lengths_are_frame_exact(frames):
    torch.manual_seed(0)
    model = WaveGANVAE.from_config(dict(latent_channels=6, encoder_initial_channels=4, encoder_max_channels=8,
                                        upsample_rates=[5, 4, 3], upsample_kernel_sizes=[11, 8, 7],
                                        upsample_initial_channel=16, resblock_kernel_sizes=[3],
                                        resblock_dilation_sizes=[[1, 3]], context_frames=0))
    hop = model.hop_length
    wav = torch.randn(2, 1, frames * hop + hop // 2)  # a partial hop at the end is dropped
    mean, log_std = model.encode(wav)
    assert mean.shape == log_std.shape == (2, 6, frames)
    assert model.decode(mean).shape == (2, 1, frames * hop)


def test_encoder_refuses_partial_hops_and_bad_shapes():
    enc = WaveEncoder(4, [2, 2], initial_channels=4, max_channels=8, resblock_kernel_sizes=[3],
                      resblock_dilation_sizes=[[1]])
    with pytest.raises(ValueError, match="multiple of the hop"):
        enc(torch.zeros(1, 1, 10))
    with pytest.raises(ValueError, match=r"\(B, 1, L\)"):
        enc(torch.zeros(1, 10))


def test_kl_is_zero_at_the_prior_and_matches_monte_carlo():
    zeros = torch.zeros(1, 3, 5)
    assert float(gaussian_kl_to_standard_normal(zeros, zeros)) == 0.0
    mean = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1)
    log_std = torch.tensor([-0.3, 0.2, -1.0]).view(1, 3, 1)
    gen = torch.Generator().manual_seed(0)
    z = mean + torch.exp(log_std) * torch.randn(1, 3, 100000, generator=gen)
    log_q = -0.5 * ((z - mean) / torch.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    log_p = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    monte_carlo = float((log_q - log_p).mean())
    analytic = float(gaussian_kl_to_standard_normal(mean, log_std))
    assert abs(analytic - monte_carlo) < 0.01 * analytic


def test_reconstruction_improves_on_real_clips_and_sigma_is_logged(tmp_path):
    steps = 12
    cfg = _cfg(_manifest(tmp_path), f"train.max_steps={steps}", "train.adversarial_start_step=10",
               f"data.valid_manifest={tmp_path / 'clips.jsonl'}", f"train.valid_every={steps}", "train.save_every=0")
    torch.manual_seed(0)
    trainer = WaveGANTrainer(cfg, tmp_path / "exp", cpu=True)
    before = trainer.validate()["mel_l1"]  # whole clips, posterior mean: deterministic
    trainer.train()
    after = read_log(tmp_path / "exp", split="valid")[steps]["mel_l1"]
    assert after < 0.9 * before, f"resynthesis mel L1 did not fall enough: {before:.3f} -> {after:.3f}"
    log = read_log(tmp_path / "exp")
    assert "loss_disc" not in log[10] and "loss_disc" in log[11]  # discriminators join at the configured step
    assert all(math.isfinite(log[s]["sigma_mean"]) and math.isfinite(log[s]["loss_kl"]) for s in log)
    assert 1e-3 < log[steps]["sigma_mean"] < 2.0, [log[s]["sigma_mean"] for s in sorted(log)]


def test_resume_is_exact(tmp_path):
    manifest = _manifest(tmp_path)
    common = ("train.adversarial_start_step=1", "discriminator.msd_scales=0", "data.segment_samples=2048")
    straight = WaveGANTrainer(_cfg(manifest, "train.max_steps=4", "train.save_every=0", *common), tmp_path / "a", cpu=True)
    straight.train()
    WaveGANTrainer(_cfg(manifest, "train.max_steps=2", "train.save_every=2", *common), tmp_path / "b", cpu=True).train()
    resumed = WaveGANTrainer(_cfg(manifest, "train.max_steps=4", "train.save_every=0", *common), tmp_path / "b",
                             resume=True, cpu=True)
    assert resumed.step == 2
    resumed.train()
    for name in ("generator", "discriminator"):
        wa = load_file(str(ckpt.latest_checkpoint(tmp_path / "a" / "checkpoints") / f"{name}.safetensors"))
        wb = load_file(str(ckpt.latest_checkpoint(tmp_path / "b" / "checkpoints") / f"{name}.safetensors"))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
