"""Stage 1 of Glow-WaveGAN: a VAE whose decoder is a GAN vocoder ("WaveGAN").

``enc`` (modules/wave_encoder.WaveEncoder) maps the waveform to a frame-rate posterior ``q(z|x) = N(mean,
exp(log_std)^2)`` with ``D`` channels; ``dec`` (HiFi-GAN V1 generator with ``in_channels = D``) maps a latent
back to the waveform; the prior is N(0, I).  Discriminators live in the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from models.base import checkpoint as ckpt
from models.base import frozen
from models.base.building import BuiltFromConfig, config_of_arguments
from models.base.frozen import FrozenComponent
from models.tts.glow_wavegan.config import WaveGANExperimentConfig, WaveGANModelConfig
from modules.vocoders.hifigan import HiFiGANGenerator
from modules.wave_encoder import WaveEncoder
from modules.weight_norm import fold_weight_norm
from utils.config import validate
from utils.memory import keep_freed_memory
from utils.registry import register
from utils.rng import seeded


@register("model", "glow_wavegan_vae")
class WaveGANVAE(BuiltFromConfig, nn.Module):
    """Waveform ``(B, 1, T * hop)`` <-> latent ``(B, D, T)``; built by :func:`models.base.building.build_model` /
    :meth:`from_config` from a :class:`WaveGANModelConfig` (meaning and defaults are there)."""

    config_class = WaveGANModelConfig

    def __init__(self, *, latent_channels: int, encoder_initial_channels: int, encoder_max_channels: int,
                 context_frames: int, upsample_rates: List[int], upsample_kernel_sizes: List[int],
                 upsample_initial_channel: int, resblock: str, resblock_kernel_sizes: List[int],
                 resblock_dilation_sizes: List[List[int]]) -> None:
        super().__init__()
        self.config = cfg = config_of_arguments(WaveGANModelConfig, locals())
        self.hop_length = cfg.hop_length
        self.latent_channels = cfg.latent_channels
        self.context_frames = cfg.context_frames
        self.enc = WaveEncoder(cfg.latent_channels, list(reversed(cfg.upsample_rates)), cfg.encoder_initial_channels,
                               cfg.encoder_max_channels, cfg.resblock, cfg.resblock_kernel_sizes,
                               cfg.resblock_dilation_sizes)
        self.dec = HiFiGANGenerator(cfg.latent_channels, cfg.resblock, cfg.resblock_kernel_sizes,
                                    cfg.resblock_dilation_sizes, cfg.upsample_rates, cfg.upsample_initial_channel,
                                    cfg.upsample_kernel_sizes, weight_norm_io=True, post_bias=True)

    def prepare_for_inference(self) -> "WaveGANVAE":
        self.eval()
        fold_weight_norm(self)
        keep_freed_memory()
        return self

    def encode(self, wav: torch.Tensor):
        """``(B, 1, L)`` -> ``mean, log_std (B, D, L // hop)``; the tail shorter than one hop is dropped."""
        usable = (wav.size(-1) // self.hop_length) * self.hop_length
        if usable == 0:
            raise ValueError(f"waveform of {wav.size(-1)} samples is shorter than one hop ({self.hop_length})")
        return self.enc(wav[..., :usable])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, D, T)`` -> waveform ``(B, 1, T * hop)``."""
        if z.dim() != 3 or z.size(1) != self.latent_channels:
            raise ValueError(f"decode: expected a (B, {self.latent_channels}, T) latent, got {tuple(z.shape)}")
        return self.dec(z)

    def forward(self, wav: torch.Tensor, noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training pass on a crop with ``context_frames`` of encoder context on each side.

        ``wav (B, 1, (T + 2 c) * hop)`` -> ``wav_hat (B, 1, T * hop)`` decoded from a posterior sample of the
        central ``T`` frames, and their ``z, mean, log_std (B, D, T)``.  ``noise`` replaces the standard normal.
        """
        mean, log_std = self.encode(wav)
        c = self.context_frames
        if mean.size(-1) <= 2 * c:
            raise ValueError(f"forward: {mean.size(-1)} frames leave nothing after {c} context frames on each side")
        if c > 0:
            mean, log_std = mean[..., c:-c], log_std[..., c:-c]
        if noise is None:
            noise = torch.randn_like(mean)
        z = mean + torch.exp(log_std) * noise
        return {"wav_hat": self.dec(z), "z": z, "mean": mean, "log_std": log_std}


def stage1_fingerprint(ckpt_dir: Path) -> str:
    """Identity of a stage-1 checkpoint: its config hash and step (latents must come from exactly this one)."""
    meta = ckpt.read_meta(ckpt_dir)
    return f"{meta['config_hash']}@{meta['step']}"


def build_stage1(config: Mapping[str, Any]) -> WaveGANVAE:
    """The stage-1 VAE (untrained) of a stage-1 checkpoint's resolved config."""
    return WaveGANVAE.from_config(validate(config, WaveGANExperimentConfig).model)


def frozen_stage1(path: str | Path) -> FrozenComponent:
    """The VAE of a stage-1 experiment/checkpoint dir as a frozen component: weights loaded strictly, source =
    the checkpoint dir, its step and the weights' sha256 (recorded in meta.json / feature.json by its users)."""
    ckpt.expect_model_type(ckpt.resolve_checkpoint_dir(path), "glow_wavegan_vae")  # a stage-2 dir fails naming it
    # The module's random init is overwritten by the checkpoint: keep it from moving the caller's RNG (a trainer
    # builds its own models after its frozen ones, and their init must not depend on the frozen ones).
    with seeded():
        return frozen.from_checkpoint(path, "generator", build_stage1)


def load_vae_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                        ) -> Tuple[WaveGANVAE, WaveGANExperimentConfig, FrozenComponent]:
    """Stage-1 experiment/checkpoint dir -> (frozen model on ``device``, its config, the frozen component)."""
    component = frozen_stage1(path)
    cfg = validate(ckpt.read_config(Path(component.source["path"])), WaveGANExperimentConfig)
    return frozen.freeze(component.module).to(device), cfg, component
