"""Builders of the vocoder generator and discriminator from :mod:`models.vocoders.gan.config`."""

from __future__ import annotations

from typing import List

from torch import nn

from models.vocoders.gan.config import GeneratorConfig, VocoderDiscriminatorConfig
from modules.discriminators import CombinedDiscriminator, DiscriminatorP, DiscriminatorR, MultiScaleDiscriminator
from modules.vocoders.amp import AMPGenerator
from modules.vocoders.hifigan import HiFiGANGenerator


def build_generator(cfg: GeneratorConfig, n_mels: int) -> nn.Module:
    """Mel ``(B, n_mels, T)`` -> waveform ``(B, 1, T * hop)``."""
    if cfg.type == "hifigan":
        return HiFiGANGenerator(n_mels, cfg.resblock, cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes,
                                cfg.upsample_rates, cfg.upsample_initial_channel, cfg.upsample_kernel_sizes,
                                weight_norm_io=True, post_bias=True)
    if cfg.type == "bigvgan":
        return AMPGenerator(n_mels, cfg.upsample_initial_channel, cfg.upsample_rates, cfg.upsample_kernel_sizes,
                            cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, activation=cfg.activation,
                            post_bias=True)
    raise ValueError(f"model.generator.type must be 'hifigan' or 'bigvgan', got {cfg.type!r}")


def build_discriminator(cfg: VocoderDiscriminatorConfig) -> CombinedDiscriminator:
    subs: List[nn.Module] = [DiscriminatorR(r) for r in cfg.stft_resolutions]
    subs += [DiscriminatorP(p, channels=cfg.period_channels) for p in cfg.periods]
    if cfg.msd:
        subs.append(MultiScaleDiscriminator())
    return CombinedDiscriminator(subs)
