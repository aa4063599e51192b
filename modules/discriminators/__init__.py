"""GAN discriminators shared by VITS, HierSpeech++, SpeechSR and the standalone vocoders.

* :class:`DiscriminatorP` (multi-period), :class:`DiscriminatorS` (multi-scale), :class:`DiscriminatorR`
  (multi-scale complex STFT) — one sub-discriminator each, in ``period.py``, ``scale.py``, ``stft.py``;
* :class:`CombinedDiscriminator` with the official key layouts (``discriminators.{i}``), built by
  :func:`vits_discriminator`, :func:`hierspeechpp_discriminator`, :func:`speechsr_discriminator`,
  :func:`hifigan_discriminator` (``combined.py``).
"""

from modules.discriminators.combined import (
    CombinedDiscriminator,
    MultiScaleDiscriminator,
    hierspeechpp_discriminator,
    hifigan_discriminator,
    speechsr_discriminator,
    vits_discriminator,
)
from modules.discriminators.period import DiscriminatorP
from modules.discriminators.scale import DiscriminatorS
from modules.discriminators.stft import DiscriminatorR

__all__ = [
    "CombinedDiscriminator",
    "DiscriminatorP",
    "DiscriminatorR",
    "DiscriminatorS",
    "MultiScaleDiscriminator",
    "hierspeechpp_discriminator",
    "hifigan_discriminator",
    "speechsr_discriminator",
    "vits_discriminator",
]
