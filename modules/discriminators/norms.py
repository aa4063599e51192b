"""Pieces shared by the sub-discriminators: the normalisation choice and the conv-stack forward pass."""

from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from modules.weight_norm import weight_norm

LRELU_SLOPE = 0.1


def norm_layer(module: nn.Module, use_spectral_norm: bool) -> nn.Module:
    """Legacy-named weight norm (``weight_g``/``weight_v``) or PyTorch spectral norm (``weight_orig``...)."""
    if use_spectral_norm:
        return nn.utils.spectral_norm(module)
    return weight_norm(module)


def conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """``convs`` each followed by LeakyReLU(0.1), then ``conv_post``; returns (flattened logits, every feature map)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap
