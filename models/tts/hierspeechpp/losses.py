"""Losses of the HierSpeech++ synthesizer (the official training code was never released; see TRAINING.md).

Generator objective (weights from the released config ``train`` section)::

    L_G = c_mel·L1(mel(ŷ), mel(y))                         reconstruction, c_mel = 45
        + c_kl·(KL_a + KL_s)                               forward BiT-flow KL at both levels, c_kl = 1
        + c_bi_kl·(KL_a^rev + KL_s^rev)                    reverse-direction KL, c_bi_kl = 0.5
        + c_f0·L1(e_, ln(F0 + 1))                          source-network F0 at 200 Hz, c_f0 = 45
        + c_prosody·L1(mel_decoder(z_sr), mel[:, :20])     prosody distillation (our choice of weight)
        + c_adv·L_adv(D(ŷ)) + c_fm·L_fm                    LSGAN + feature matching (VITS form)

The adversarial, feature-matching (VITS scale 2), masked-L1 and single-sample KL estimators come from
:mod:`modules.losses` (shared with VITS); this file pairs the KL directions and puts the terms together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence

import torch
from torch import Tensor

from modules.losses import discriminator_loss, feature_matching_loss, generator_loss, kl_loss

__all__ = [
    "LossWeights",
    "hierarchical_kl",
    "reconstruction_objective",
    "generator_objective",
    "discriminator_objective",
]


@dataclass
class LossWeights:
    c_mel: float = 45.0
    c_kl: float = 1.0
    c_bi_kl: float = 0.5
    c_f0: float = 45.0
    c_prosody: float = 45.0
    c_adv: float = 1.0
    c_fm: float = 1.0


def hierarchical_kl(
    z_forward: Tensor,
    logs_posterior: Tensor,
    m_prior: Tensor,
    logs_prior: Tensor,
    z_reverse: Tensor,
    m_posterior: Tensor,
    mask: Tensor,
) -> Dict[str, Tensor]:
    """Both directions of one BiT-flow level (flows are volume preserving, so no log-determinant).

    Args:
        z_forward: flow(z_q) (B, C, T): posterior sample pushed into the prior space.
        logs_posterior, m_posterior: posterior statistics (B, C, T).
        m_prior, logs_prior: prior statistics (B, C, T).
        z_reverse: flow⁻¹(z_p) (B, C, T): prior sample pulled back into the posterior space.
        mask: (B, 1, T).

    Returns:
        ``forward`` = KL(q ‖ p) estimate, ``reverse`` = KL(p ‖ q) estimate (per valid frame).
    """
    return {
        "forward": kl_loss(z_forward, logs_posterior, m_prior, logs_prior, mask),
        "reverse": kl_loss(z_reverse, logs_prior, m_posterior, logs_posterior, mask),
    }


def reconstruction_objective(terms: Dict[str, Tensor], weights: LossWeights) -> Tensor:
    """The weighted non-adversarial part of ``L_G`` (mel, both KL directions at both levels, F0, prosody)."""
    return (
        weights.c_mel * terms["mel"]
        + weights.c_kl * (terms["kl_a"] + terms["kl_s"])
        + weights.c_bi_kl * (terms["kl_a_rev"] + terms["kl_s_rev"])
        + weights.c_f0 * terms["f0"]
        + weights.c_prosody * terms["prosody"]
    )


def generator_objective(
    terms: Dict[str, Tensor],
    disc_fake: Sequence[Tensor],
    fmap_real: Sequence[Sequence[Tensor]],
    fmap_fake: Sequence[Sequence[Tensor]],
    weights: LossWeights,
) -> Dict[str, Tensor]:
    """Weighted generator loss.

    Args:
        terms: unweighted ``mel``, ``kl_a``, ``kl_s``, ``kl_a_rev``, ``kl_s_rev``, ``f0``, ``prosody`` scalars.
        disc_fake: discriminator outputs for ŷ, one tensor per sub-discriminator (empty: no GAN terms).
        fmap_real, fmap_fake: feature maps for y and ŷ.

    Returns:
        ``loss`` (total, back-propagated) plus every unweighted term and ``adv`` / ``fm`` for logging.
    """
    if disc_fake:
        adv, _ = generator_loss(disc_fake)
        fm = feature_matching_loss(fmap_real, fmap_fake)
    else:  # before the discriminator starts
        adv = fm = terms["mel"].new_zeros(())
    total = reconstruction_objective(terms, weights) + weights.c_adv * adv + weights.c_fm * fm
    return {"loss": total, **terms, "adv": adv, "fm": fm}


def discriminator_objective(disc_real: Sequence[Tensor], disc_fake: Sequence[Tensor]) -> Tensor:
    """LSGAN discriminator loss summed over the sub-discriminators: Σ (1 − D(y))² + D(ŷ)²."""
    loss, _, _ = discriminator_loss(disc_real, disc_fake)
    return loss
