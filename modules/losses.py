"""GAN and VAE losses of the VITS family (also used by HierSpeech++, SpeechSR and the standalone vocoders).

Discriminator outputs are lists with one entry per sub-discriminator (see modules/discriminators); feature
maps are lists of lists of tensors.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F


def discriminator_loss(
    real_outputs: Sequence[torch.Tensor], fake_outputs: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, List[float], List[float]]:
    """LSGAN discriminator loss ``sum_k mean((1 - D_k(y))^2) + mean(D_k(y_hat)^2)``.

    Returns ``(total, per-sub-discriminator real losses, fake losses)`` (the latter two as floats for logging).
    """
    if len(real_outputs) != len(fake_outputs):
        raise ValueError(f"discriminator_loss: {len(real_outputs)} real vs {len(fake_outputs)} fake outputs")
    total = 0.0
    real_losses, fake_losses = [], []
    for d_real, d_fake in zip(real_outputs, fake_outputs):
        r_loss = torch.mean((1 - d_real.float()) ** 2)
        f_loss = torch.mean(d_fake.float() ** 2)
        total = total + r_loss + f_loss
        real_losses.append(r_loss.item())
        fake_losses.append(f_loss.item())
    return total, real_losses, fake_losses


def generator_loss(fake_outputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """LSGAN generator loss ``sum_k mean((1 - D_k(y_hat))^2)``; returns ``(total, per-sub-discriminator)``."""
    total = 0.0
    losses = []
    for d_fake in fake_outputs:
        loss = torch.mean((1 - d_fake.float()) ** 2)
        losses.append(loss)
        total = total + loss
    return total, losses


def feature_matching_loss(
    fmap_real: Sequence[Sequence[torch.Tensor]], fmap_fake: Sequence[Sequence[torch.Tensor]], scale: float = 2.0
) -> torch.Tensor:
    """``scale * sum over every layer of mean|F(y) - F(y_hat)|``; real features are detached (VITS scale 2)."""
    total = 0.0
    for layers_r, layers_g in zip(fmap_real, fmap_fake):
        for feat_r, feat_g in zip(layers_r, layers_g):
            total = total + torch.mean(torch.abs(feat_r.float().detach() - feat_g.float()))
    return total * scale


def kl_loss(
    z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, z_mask: torch.Tensor
) -> torch.Tensor:
    """VITS KL term between the posterior sample mapped by the flow and the (expanded) text prior.

    Single-sample estimate of ``KL(q(z|x) || p(z|c))`` per valid frame and channel:
    ``logs_p - logs_q - 1/2 + (z_p - m_p)^2 exp(-2 logs_p) / 2``, summed over the mask and divided by its sum.
    All tensors ``(B, C, T)``, ``z_mask (B, 1, T)``.
    """
    z_p, logs_q, m_p, logs_p = z_p.float(), logs_q.float(), m_p.float(), logs_p.float()
    kl = logs_p - logs_q - 0.5
    kl = kl + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)


def mel_l1_loss(mel: torch.Tensor, mel_hat: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error between two (log-)mel spectrograms ``(B, n_mels, T)``; optional ``(B, 1, T)`` mask."""
    if mel.shape != mel_hat.shape:
        raise ValueError(f"mel_l1_loss: shapes differ: {tuple(mel.shape)} vs {tuple(mel_hat.shape)}")
    if mask is None:
        return F.l1_loss(mel_hat, mel)
    diff = torch.abs(mel_hat - mel) * mask
    return diff.sum() / (mask.sum() * mel.size(1))
