"""Non-causal gated WaveNet stack ("WN") of VITS, used by posterior encoders and coupling layers.

Checkpoint names: ``in_layers.{i}``, ``res_skip_layers.{i}``, ``cond_layer`` — all weight-normed with the
legacy ``weight_g``/``weight_v`` names (modules/weight_norm.py).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from modules.commons import fused_add_tanh_sigmoid_multiply, get_padding
from modules.weight_norm import weight_norm


class WaveNet(nn.Module):
    """Stack of dilated gated convolutions with residual and skip paths.

    Layer ``i`` uses dilation ``dilation_rate ** i``. The residual half of every layer except the last
    updates the running input; the skip halves are summed into the output. ``g`` (global conditioning)
    enters every layer through one shared 1x1 ``cond_layer`` whose output is split per layer.

    ``dropout_before_gate``: VITS drops the gate's output; Glow-TTS drops the dilated conv's output before
    the gate (same modules and weights, different training-time noise).
    """

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
        dropout_before_gate: bool = False,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WaveNet kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.dropout_before_gate = dropout_before_gate
        self.drop = nn.Dropout(p_dropout)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels > 0:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))
        for i in range(n_layers):
            dilation = dilation_rate**i
            conv = nn.Conv1d(
                hidden_channels,
                2 * hidden_channels,
                kernel_size,
                dilation=dilation,
                padding=get_padding(kernel_size, dilation),
            )
            self.in_layers.append(weight_norm(conv))
            # The last layer has no residual half: only skip channels.
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden_channels, out, 1)))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, H, T)``, ``x_mask (B, 1, T)``, ``g (B, gin, 1)`` or None -> ``(B, H, T)`` (masked)."""
        h = self.hidden_channels
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if (g is not None and self.gin_channels > 0) else None
        for i in range(self.n_layers):
            x_in = self.in_layers[i](x)
            if self.dropout_before_gate:
                x_in = self.drop(x_in)
            g_l = cond[:, 2 * h * i:2 * h * (i + 1)] if cond is not None else torch.zeros_like(x_in)
            acts = fused_add_tanh_sigmoid_multiply(x_in, g_l, h)
            if not self.dropout_before_gate:
                acts = self.drop(acts)
            res_skip = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                output = output + res_skip[:, h:]
            else:
                output = output + res_skip
        return output * x_mask
