"""The GAN step shared by every adversarially trained model (VITS, GAN vocoders, SpeechSR, HierSpeech++).

One call of :func:`adversarial_step` inside a trainer's ``train_step``:

1. discriminator update: LSGAN loss on ``D(real)`` vs ``D(fake.detach())``, ``trainer.optimize(discriminator)``;
2. with the discriminator's parameters frozen (its accumulated gradients stay clean): LSGAN generator loss on
   ``D(fake)`` and feature matching between the real and fake feature maps;
3. generator update: ``adv_weight·adv + fm_weight·fm + Σ generator_terms``, ``trainer.optimize(generator)``.

The discriminator is called as ``D(real, fake) -> (real_outputs, fake_outputs, real_fmaps, fake_fmaps)``.

Log keys, the same in every GAN trainer: ``loss_disc`` (the discriminator's loss), ``loss_adv`` and ``loss_fm``
(weighted, as they enter the generator's total), the model's own ``generator_terms`` (by convention
``loss_<name>``, weighted), and ``loss_gen_total``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

import torch
from torch import Tensor

from modules.losses import discriminator_loss, feature_matching_loss, generator_loss


def adversarial_step(
    trainer: Any,
    real: Tensor,
    fake: Tensor,
    generator_terms: Mapping[str, Tensor],
    *,
    adv_weight: float = 1.0,
    fm_weight: float = 1.0,
    use_discriminator: bool = True,
    discriminator: str = "discriminator",
    generator: str = "generator",
) -> Dict[str, Tensor]:
    """Update the discriminator, then the generator; return the losses under the keys above.

    Args:
        trainer: the :class:`~models.base.trainer.BaseTrainer` (its ``models``, ``frozen`` and ``optimize``).
        real: target waveform window ``(B, 1, T)``.
        fake: generated window ``(B, 1, T)``, still attached to the generator's graph.
        generator_terms: the generator's other (already weighted) losses, added after the adversarial ones.
        adv_weight, fm_weight: weights of the adversarial and feature-matching terms.
        use_discriminator: False skips the discriminator altogether (e.g. before ``disc_start_step``): no
            discriminator update, ``loss_adv = loss_fm = 0``.
        discriminator, generator: model / optimizer names.
    """
    disc = trainer.models[discriminator]
    out: Dict[str, Tensor] = {}
    if use_discriminator:
        real_out, fake_out, _, _ = disc(real, fake.detach())
        loss_disc, _, _ = discriminator_loss(real_out, fake_out)
        trainer.optimize(discriminator, loss_disc)
        with trainer.frozen(discriminator):
            _, fake_out, fmap_real, fmap_fake = disc(real, fake)
            loss_adv = generator_loss(fake_out)[0] * adv_weight
            loss_fm = feature_matching_loss(fmap_real, fmap_fake) * fm_weight
        out["loss_disc"] = loss_disc
    else:
        loss_adv = loss_fm = fake.new_zeros((), dtype=torch.float32)
    total = loss_adv + loss_fm
    for value in generator_terms.values():
        total = total + value
    trainer.optimize(generator, total)
    return {**out, "loss_adv": loss_adv, "loss_fm": loss_fm, **generator_terms, "loss_gen_total": total}
