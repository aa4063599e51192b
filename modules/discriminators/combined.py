"""Discriminator containers with the official checkpoint layouts (``discriminators.{i}.*``).

| builder | official class | sub-discriminators (index order) |
|---|---|---|
| :func:`vits_discriminator` | VITS ``MultiPeriodDiscriminator`` | S, P2, P3, P5, P7, P11 |
| :func:`hierspeechpp_discriminator` | HierSpeech++ / SpeechSR-24k ``MultiPeriodDiscriminator`` | R x 5 (2048..128), P2..P11 |
| :func:`speechsr_discriminator` (48 kHz) | SpeechSR-48k ``MultiPeriodDiscriminator`` | R x 6 (4096..128), P2..P11 |
| :func:`hifigan_discriminator` | HiFi-GAN MPD + MSD | P2..P11, then the MSD group: S (spectral norm), S, S |
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from modules.discriminators.period import DiscriminatorP
from modules.discriminators.scale import DiscriminatorS
from modules.discriminators.stft import DiscriminatorR

DEFAULT_PERIODS = (2, 3, 5, 7, 11)
HIERSPEECHPP_RESOLUTIONS = ((2048, 512, 2048), (1024, 256, 1024), (512, 128, 512), (256, 64, 256), (128, 32, 128))
SPEECHSR48K_RESOLUTIONS = ((4096, 1024, 4096),) + HIERSPEECHPP_RESOLUTIONS

DiscriminatorOutput = Tuple[List[torch.Tensor], List[torch.Tensor], List[List[torch.Tensor]], List[List[torch.Tensor]]]


class CombinedDiscriminator(nn.Module):
    """Runs every sub-discriminator on real and generated audio.

    ``forward(y, y_hat)`` with ``(B, 1, T)`` waveforms returns ``(real logits, fake logits, real feature maps,
    fake feature maps)``, one entry per sub-discriminator, in the order of ``discriminators``.  A member that is
    itself a :class:`CombinedDiscriminator` (e.g. the multi-scale group) contributes all of its entries.
    """

    def __init__(self, discriminators: Sequence[nn.Module]):
        super().__init__()
        if len(discriminators) == 0:
            raise ValueError("CombinedDiscriminator needs at least one sub-discriminator")
        self.discriminators = nn.ModuleList(discriminators)

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> DiscriminatorOutput:
        if y.shape != y_hat.shape or y.dim() != 3 or y.size(1) != 1:
            raise ValueError(f"discriminator: expected two (B, 1, T) waveforms, got {tuple(y.shape)} and {tuple(y_hat.shape)}")
        real, fake, fmap_real, fmap_fake = [], [], [], []
        for i, disc in enumerate(self.discriminators):
            y, y_hat = self.member_inputs(i, y, y_hat)
            if isinstance(disc, CombinedDiscriminator):
                outs = disc(y, y_hat)
                for acc, part in zip((real, fake, fmap_real, fmap_fake), outs):
                    acc.extend(part)
                continue
            logit_r, fm_r = disc(y)
            logit_g, fm_g = disc(y_hat)
            real.append(logit_r)
            fake.append(logit_g)
            fmap_real.append(fm_r)
            fmap_fake.append(fm_g)
        return real, fake, fmap_real, fmap_fake

    def member_inputs(self, index: int, y: torch.Tensor, y_hat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The signals member ``index`` sees, given those the previous member saw (default: unchanged)."""
        return y, y_hat


class MultiScaleDiscriminator(CombinedDiscriminator):
    """HiFi-GAN MSD: DiscriminatorS on the raw signal (spectral norm) and on x2 / x4 average-pooled copies."""

    def __init__(self, n_scales: int = 3):
        super().__init__([DiscriminatorS(use_spectral_norm=(i == 0)) for i in range(n_scales)])
        self.meanpools = nn.ModuleList(nn.AvgPool1d(4, 2, padding=2) for _ in range(n_scales - 1))

    def member_inputs(self, index: int, y: torch.Tensor, y_hat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if index == 0:
            return y, y_hat
        pool = self.meanpools[index - 1]  # each scale halves the previous one's rate
        return pool(y), pool(y_hat)


def vits_discriminator(
    use_spectral_norm: bool = False,
    periods: Sequence[int] = DEFAULT_PERIODS,
    period_channels: Sequence[int] = (32, 128, 512, 1024, 1024),
    use_scale: bool = True,
) -> CombinedDiscriminator:
    """VITS ``MultiPeriodDiscriminator``: ``discriminators.0`` = DiscriminatorS, then one DiscriminatorP per period.

    The defaults are the official layout; ``period_channels`` / ``use_scale=False`` give smaller variants for
    quick CPU runs (their checkpoints are then not interchangeable with official ``D_*.pth`` files).
    """
    subs: List[nn.Module] = [DiscriminatorS(use_spectral_norm)] if use_scale else []
    subs += [DiscriminatorP(p, use_spectral_norm=use_spectral_norm, channels=period_channels) for p in periods]
    return CombinedDiscriminator(subs)


def hierspeechpp_discriminator(
    resolutions: Sequence[Sequence[int]] = HIERSPEECHPP_RESOLUTIONS,
    periods: Sequence[int] = DEFAULT_PERIODS,
    use_spectral_norm: bool = False,
) -> CombinedDiscriminator:
    """HierSpeech++ synthesizer / SpeechSR discriminator: MS-STFT sub-discriminators first, then MPD."""
    subs: List[nn.Module] = [DiscriminatorR(r, use_spectral_norm) for r in resolutions]
    subs += [DiscriminatorP(p, use_spectral_norm=use_spectral_norm) for p in periods]
    return CombinedDiscriminator(subs)


def speechsr_discriminator(sample_rate: int) -> CombinedDiscriminator:
    """SpeechSR discriminator for a 24 kHz (5 STFT resolutions) or 48 kHz (6 resolutions) output."""
    if sample_rate == 24000:
        return hierspeechpp_discriminator(HIERSPEECHPP_RESOLUTIONS)
    if sample_rate == 48000:
        return hierspeechpp_discriminator(SPEECHSR48K_RESOLUTIONS)
    raise ValueError(f"speechsr_discriminator: sample_rate must be 24000 or 48000, got {sample_rate}")


def hifigan_discriminator(periods: Sequence[int] = DEFAULT_PERIODS, n_scales: int = 3) -> CombinedDiscriminator:
    """Original HiFi-GAN MPD + MSD in one container: ``discriminators.{0..P-1}`` periods, then the MSD group."""
    subs: List[nn.Module] = [DiscriminatorP(p) for p in periods]
    return CombinedDiscriminator(subs + [MultiScaleDiscriminator(n_scales)])
