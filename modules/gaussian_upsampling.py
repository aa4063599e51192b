"""Gaussian upsampling (Non-Attentive Tacotron, Shen et al. 2020): token sequence -> frame sequence.

Token ``i`` with duration ``d_i`` and range ``sigma_i`` is a Gaussian centred at ``c_i = sum_{j<=i} d_j - d_i / 2``;
frame ``t`` takes the softmax over tokens of the Gaussian log-densities at ``t + frame_offset`` as its weights.

The public implementations evaluate ``exp(log_prob)`` and normalise with ``+1e-8``; far from every centre (small
sigma) the densities underflow and the frame becomes all zeros. A masked softmax over the log-densities gives the
same weights wherever that version is finite and stays normalised everywhere. ``frame_offset`` is the frame
index origin: 0.0 evaluates t = 0..T-1 (maum-ai/wavegrad2), 1.0 evaluates t = 1..T (keonlee9420/WaveGrad2).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_upsample(
    memory: torch.Tensor,
    durations: torch.Tensor,
    sigma: torch.Tensor,
    num_frames: int,
    token_mask: Optional[torch.Tensor] = None,
    frame_lengths: Optional[torch.Tensor] = None,
    frame_offset: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Upsample ``memory`` to ``num_frames`` frames.

    Args:
        memory: ``(B, N, C)`` token features.
        durations: ``(B, N)`` frames per token (may be fractional or 0).
        sigma: ``(B, N)`` positive ranges.
        num_frames: output length T.
        token_mask: ``(B, N)`` bool, True on valid tokens (None = all valid). Each item needs one valid token.
        frame_lengths: ``(B,)`` valid frames per item; frames past it get zero weights and zero output.
        frame_offset: index of the first frame (see module doc).

    Returns:
        ``(upsampled (B, T, C), weights (B, N, T))``; weights sum to 1 over N on every valid frame.
    """
    if memory.dim() != 3 or durations.shape != memory.shape[:2] or sigma.shape != durations.shape:
        raise ValueError(f"gaussian_upsample: memory (B, N, C), durations and sigma (B, N) expected, got "
                         f"{tuple(memory.shape)}, {tuple(durations.shape)}, {tuple(sigma.shape)}")
    frames = torch.arange(num_frames, device=memory.device, dtype=memory.dtype) + frame_offset  # (T,)
    centres = torch.cumsum(durations, dim=-1) - 0.5 * durations  # (B, N)
    sigma = sigma.to(memory.dtype).unsqueeze(-1)
    z = (frames.view(1, 1, -1) - centres.unsqueeze(-1)) / sigma  # (B, N, T)
    log_density = -0.5 * z * z - sigma.log() - _LOG_SQRT_2PI
    if token_mask is not None:
        if bool((token_mask.sum(-1) == 0).any()):
            raise ValueError("gaussian_upsample: an item has no valid token")
        log_density = log_density.masked_fill(~token_mask.unsqueeze(-1), float("-inf"))
    weights = torch.softmax(log_density, dim=1)
    if frame_lengths is not None:
        valid = torch.arange(num_frames, device=memory.device).unsqueeze(0) < frame_lengths.to(memory.device).unsqueeze(1)
        weights = weights * valid.unsqueeze(1).to(weights.dtype)
    upsampled = torch.bmm(weights.transpose(1, 2), memory)
    return upsampled, weights
