"""Duration predictors of VITS (also used by the HierSpeech++ text-to-vec model).

* :class:`StochasticDurationPredictor` — flow-based model of log-durations (VITS §2.2.2).  Training returns the
  variational negative log-likelihood bound per item; ``reverse=True`` samples log-durations.
* :class:`DurationPredictor` — deterministic two-layer conv regressor of log-durations (``use_sdp=False``).

Checkpoint names follow the original: ``pre``, ``convs`` (DDSConv), ``proj``, optional ``cond``;
``flows.{0,1,3,5,7}`` (ElementwiseAffine + ConvFlows, Flips in between) and the posterior
``post_pre``, ``post_convs``, ``post_proj``, ``post_flows.{0,1,3,5,7}``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from modules.flows import ConvFlow, DDSConv, ElementwiseAffine, Flip, Log
from modules.transformer import LayerNorm


def _flow_stack(channels: int, kernel_size: int, n_flows: int) -> nn.ModuleList:
    flows = nn.ModuleList([ElementwiseAffine(2)])
    for _ in range(n_flows):
        flows.append(ConvFlow(2, channels, kernel_size, n_layers=3))
        flows.append(Flip())
    return flows


class StochasticDurationPredictor(nn.Module):
    """Stochastic duration predictor.

    Args:
        in_channels: text-encoder hidden size.
        filter_channels: ignored, as in the original (the convolutions always use ``in_channels``); kept so
            official constructor calls work unchanged.
        kernel_size: DDSConv kernel.
        p_dropout: DDSConv dropout.
        n_flows: number of ConvFlow couplings in each flow stack.
        gin_channels: speaker/style conditioning size (0 = none).
    """

    def __init__(
        self,
        in_channels: int,
        filter_channels: int,
        kernel_size: int,
        p_dropout: float,
        n_flows: int = 4,
        gin_channels: int = 0,
    ):
        super().__init__()
        channels = in_channels  # the original overrides filter_channels with in_channels
        self.log_flow = Log()
        self.flows = _flow_stack(channels, kernel_size, n_flows)

        self.post_pre = nn.Conv1d(1, channels, 1)
        self.post_proj = nn.Conv1d(channels, channels, 1)
        self.post_convs = DDSConv(channels, kernel_size, n_layers=3, p_dropout=p_dropout)
        self.post_flows = _flow_stack(channels, kernel_size, n_flows)

        self.pre = nn.Conv1d(in_channels, channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.convs = DDSConv(channels, kernel_size, n_layers=3, p_dropout=p_dropout)
        if gin_channels > 0:
            self.cond = nn.Conv1d(gin_channels, channels, 1)

    def _condition(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor]) -> torch.Tensor:
        # Gradients do not flow back into the text encoder / speaker embedding (as in VITS).
        x = self.pre(torch.detach(x))
        if g is not None:
            x = x + self.cond(torch.detach(g))
        x = self.convs(x, x_mask)
        return self.proj(x) * x_mask

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        w: Optional[torch.Tensor] = None,
        g: Optional[torch.Tensor] = None,
        reverse: bool = False,
        noise_scale: float = 1.0,
        noise: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Training NLL or sampled log-durations.

        Args:
            x: ``(B, H, Tx)`` text hidden states; ``x_mask`` ``(B, 1, Tx)``.
            w: ``(B, 1, Tx)`` durations in frames (training only).
            g: ``(B, gin, 1)`` conditioning or None.
            reverse: sample instead of scoring.
            noise_scale: std of the reverse-pass noise.
            noise: optional ``(B, 2, Tx)`` standard normal replacing the internal draw (``e_q`` in training,
                the sampling noise in reverse) — used to replay recorded runs.

        Returns:
            training: ``(B,)`` NLL bound (sum over frames); reverse: ``(B, 1, Tx)`` log-durations.
        """
        x = self._condition(x, x_mask, g)
        shape = (x.size(0), 2, x.size(2))
        if noise is not None and tuple(noise.shape) != shape:
            raise ValueError(f"StochasticDurationPredictor: noise must be {shape}, got {tuple(noise.shape)}")
        if reverse:
            z = (noise if noise is not None else torch.randn(shape, device=x.device, dtype=x.dtype)) * noise_scale
            return self._sample(z, x, x_mask)
        if w is None:
            raise ValueError("StochasticDurationPredictor: durations w are required when reverse=False")
        return self._nll(x, x_mask, w, noise)

    def _sample(self, z: torch.Tensor, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """Scaled noise ``z (B, 2, Tx)`` through the flows in reverse -> log-durations ``(B, 1, Tx)``; ``x`` is the
        conditioned text ``(B, H, Tx)``."""
        # Reverse order, skipping the first ConvFlow (flows.1): it only acts on the dummy
        # channel z1, which is discarded, so the original removes it from sampling.
        flows = list(reversed(self.flows))
        flows = flows[:-2] + [flows[-1]]
        for flow in flows:
            z = flow(z, x_mask, g=x, reverse=True)
        return z[:, :1]

    def _nll(self, x: torch.Tensor, x_mask: torch.Tensor, w: torch.Tensor,
             noise: Optional[torch.Tensor]) -> torch.Tensor:
        """Variational NLL bound ``(B,)`` of durations ``w (B, 1, Tx)`` given the conditioned text ``x (B, H, Tx)``
        (``noise``: the posterior's standard normal ``(B, 2, Tx)``, else drawn)."""
        z0, z1, log_q = self._dequantize(x, x_mask, w, noise)
        z0, logdet_tot = self.log_flow(z0, x_mask)
        z = torch.cat([z0, z1], 1)
        for flow in self.flows:
            z, logdet = flow(z, x_mask, g=x)
            logdet_tot = logdet_tot + logdet
        nll = torch.sum(0.5 * (math.log(2 * math.pi) + z**2) * x_mask, [1, 2]) - logdet_tot
        return nll + log_q

    def _dequantize(self, x: torch.Tensor, x_mask: torch.Tensor, w: torch.Tensor,
                    noise: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Variational dequantisation: the posterior q(u, nu | w, x) through ``post_flows``. Returns ``z0 = w - u``
        and ``z1 = nu`` ``(B, 1, Tx)`` and ``log q`` ``(B,)``."""
        h_w = self.post_proj(self.post_convs(self.post_pre(w), x_mask)) * x_mask
        # drawn after post_convs, whose dropout draws first in training (the original's order of random numbers)
        shape = (x.size(0), 2, x.size(2))
        e_q = (noise if noise is not None else torch.randn(shape, device=x.device, dtype=x.dtype)) * x_mask
        z_q = e_q
        logdet_q = torch.zeros(x.size(0), device=x.device, dtype=x.dtype)
        for flow in self.post_flows:
            z_q, logdet = flow(z_q, x_mask, g=x + h_w)
            logdet_q = logdet_q + logdet
        z_u, z1 = torch.split(z_q, [1, 1], 1)
        u = torch.sigmoid(z_u) * x_mask
        z0 = (w - u) * x_mask
        logdet_q = logdet_q + torch.sum((F.logsigmoid(z_u) + F.logsigmoid(-z_u)) * x_mask, [1, 2])
        log_q = torch.sum(-0.5 * (math.log(2 * math.pi) + e_q**2) * x_mask, [1, 2]) - logdet_q
        return z0, z1, log_q


class DurationPredictor(nn.Module):
    """Deterministic log-duration regressor: 2 x [conv -> ReLU -> LayerNorm -> dropout] -> 1x1 projection.

    ``norm_eps``: LayerNorm epsilon (VITS 1e-5; the Glow-TTS predictor, otherwise identical, uses 1e-4).
    """

    def __init__(
        self,
        in_channels: int,
        filter_channels: int,
        kernel_size: int,
        p_dropout: float,
        gin_channels: int = 0,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = LayerNorm(filter_channels, norm_eps)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = LayerNorm(filter_channels, norm_eps)
        self.proj = nn.Conv1d(filter_channels, 1, 1)
        if gin_channels > 0:
            self.cond = nn.Conv1d(gin_channels, in_channels, 1)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, H, Tx)``, ``x_mask (B, 1, Tx)``, ``g (B, gin, 1)`` -> log-durations ``(B, 1, Tx)``."""
        x = torch.detach(x)
        if g is not None:
            x = x + self.cond(torch.detach(g))
        x = self.drop(self.norm_1(torch.relu(self.conv_1(x * x_mask))))
        x = self.drop(self.norm_2(torch.relu(self.conv_2(x * x_mask))))
        return self.proj(x * x_mask) * x_mask
