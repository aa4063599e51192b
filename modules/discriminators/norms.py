"""Weight normalisation choice shared by the discriminators."""

from __future__ import annotations

from torch import nn

from modules.weight_norm import weight_norm


def norm_layer(module: nn.Module, use_spectral_norm: bool) -> nn.Module:
    """Legacy-named weight norm (``weight_g``/``weight_v``) or PyTorch spectral norm (``weight_orig``...)."""
    if use_spectral_norm:
        return nn.utils.spectral_norm(module)
    return weight_norm(module)
