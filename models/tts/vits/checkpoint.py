"""Official VITS checkpoints (``G_*.pth`` / ``D_*.pth``, the released ``pretrained_*.pth``).

Format written by jaywalnut310/vits ``utils.save_checkpoint``: ``{'model': state_dict, 'iteration': int,
'optimizer': optimizer state dict, 'learning_rate': float}``.  Generator files load strictly into
:class:`models.tts.vits.model.VITS` (``weights_only=True``, any device); discriminator files into
:func:`modules.discriminators.vits_discriminator`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from models.base.checkpoint import load_state_dict_strict, read_state_dict_file, save_state_dict_file
from models.tts.vits.config import VITSConfig, from_official_config
from models.tts.vits.model import VITS
from modules.discriminators import CombinedDiscriminator, vits_discriminator


def load_official_generator(
    path: str | Path, config: VITSConfig | Mapping[str, Any] | str | Path | None = None,
    device: str | torch.device = "cpu",
) -> VITS:
    """Build VITS from ``config`` (a :class:`VITSConfig`, an official ``config.json`` dict or path; default
    ``config.json`` next to the checkpoint) and load the official generator checkpoint strictly (eval mode)."""
    path = Path(path)
    if config is None:
        config = path.parent / "config.json"
    cfg = config if isinstance(config, VITSConfig) else from_official_config(config)
    model = VITS.from_config(cfg)
    load_state_dict_strict(model, read_state_dict_file(path), str(path))
    return model.to(device).eval()


def load_official_discriminator(path: str | Path, use_spectral_norm: bool = False) -> CombinedDiscriminator:
    """The official ``MultiPeriodDiscriminator`` of a ``D_*.pth`` file, loaded strictly."""
    disc = vits_discriminator(use_spectral_norm)
    load_state_dict_strict(disc, read_state_dict_file(path), str(path))
    return disc


def save_official_checkpoint(
    model: nn.Module, path: str | Path, iteration: int = 0,
    optimizer: Optional[torch.optim.Optimizer] = None, learning_rate: float = 2e-4,
) -> None:
    """Write ``{'model', 'iteration', 'optimizer', 'learning_rate'}`` as the official trainer does, atomically.

    A model whose weight norm was folded has no ``weight_g``/``weight_v`` and is refused.
    """
    save_state_dict_file(
        model, path, wrap=True, iteration=int(iteration),
        optimizer=optimizer.state_dict() if optimizer is not None else None, learning_rate=float(learning_rate),
    )
