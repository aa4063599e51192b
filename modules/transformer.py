"""VITS relative-position Transformer encoder and its parts (channel-first tensors).

The attribute names are part of the official checkpoint formats (VITS text encoder, HierSpeech++ mel
decoder and style encoder, TTV text encoder): ``attn_layers / norm_layers_1 / ffn_layers / norm_layers_2``,
``conv_q/conv_k/conv_v/conv_o``, ``emb_rel_k/emb_rel_v`` of shape ``(1, 2*window+1, head_dim)``, LayerNorm
parameters ``gamma``/``beta``, FFN ``conv_1/conv_2``.

Relative positions (Shaw et al. 2018, as in VITS): a learned embedding per clipped offset in
``[-window, window]`` is added to the attention logits (keys) and to the output (values). Offsets beyond the
window get zero embeddings.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """Layer normalisation over the channel dim of ``(B, C, T)``; parameters ``gamma`` and ``beta``."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


def _relative_embeddings_for(emb: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """Rows of ``emb (H', 2w+1, D)`` for offsets ``-(length-1) .. length-1`` -> ``(H', 2*length-1, D)``.

    Offsets outside the window get zero rows (the table is zero-padded, then sliced).
    """
    pad = max(length - (window + 1), 0)
    start = max((window + 1) - length, 0)
    if pad > 0:
        emb = F.pad(emb, (0, 0, pad, pad))
    return emb[:, start:start + 2 * length - 1]


def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
    """Logits indexed by relative offset ``(B, H, L, 2L-1)`` -> by absolute key position ``(B, H, L, L)``.

    Pad-and-reshape skew: after padding one column and ``L-1`` trailing elements, viewing the flat
    buffer with row length ``2L-1`` shifts row ``i`` left by ``i``.
    """
    batch, heads, length, _ = x.shape
    x = F.pad(x, (0, 1)).reshape(batch, heads, 2 * length * length)
    x = F.pad(x, (0, length - 1))
    return x.view(batch, heads, length + 1, 2 * length - 1)[:, :, :length, length - 1:]


def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
    """Weights by absolute key position ``(B, H, L, L)`` -> by relative offset ``(B, H, L, 2L-1)``."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, (0, length - 1)).reshape(batch, heads, length * length + length * (length - 1))
    x = F.pad(x, (length, 0))
    return x.view(batch, heads, length, 2 * length)[:, :, :, 1:]


def _diagonal_band(padded: torch.Tensor, length: int, width: int) -> torch.Tensor:
    """View ``(..., L, width)`` of ``padded (..., L, L + width - 1)`` (last dim contiguous) whose ``[i, o]`` is
    ``padded[..., i, i + o]``: with ``w`` columns of padding on each side of an ``(L, L)`` matrix ``M``, the band of
    ``M[i, i + o - w]`` for ``o`` in ``[0, 2w]`` (zeros, or discarded sums, where ``i + o - w`` leaves ``[0, L)``)."""
    strides = padded.stride()
    return padded.as_strided((*padded.shape[:-2], length, width), (*strides[:-2], strides[-2] + 1, 1))


def _proximal_bias(length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``-log(1 + |i - j|)`` as ``(1, 1, L, L)``: favours nearby positions."""
    r = torch.arange(length, dtype=torch.float32)
    bias = -torch.log1p((r.unsqueeze(0) - r.unsqueeze(1)).abs())
    return bias.view(1, 1, length, length).to(device=device, dtype=dtype)


class MultiHeadAttention(nn.Module):
    """Multi-head dot-product attention over channel-first sequences (1x1 conv projections).

    ``window_size`` enables relative-position embeddings (self-attention only); ``proximal_bias`` adds
    ``-log(1+|i-j|)`` to the logits; ``proximal_init`` starts ``conv_k`` equal to ``conv_q``; ``block_length``
    (Glow-TTS) masks keys farther than that many positions from the query (with the padding mask).
    Masked logits are set to -1e4 (not -inf) like the original, so fully masked rows stay finite.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        p_dropout: float = 0.0,
        window_size: Optional[int] = None,
        heads_share: bool = True,
        proximal_bias: bool = False,
        proximal_init: bool = False,
        block_length: Optional[int] = None,
    ):
        super().__init__()
        if channels % n_heads != 0:
            raise ValueError(f"MultiHeadAttention: channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.proximal_bias = proximal_bias
        self.block_length = block_length
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window_size is not None:
            rel_heads = 1 if heads_share else n_heads
            std = self.k_channels**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(rel_heads, 2 * window_size + 1, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(rel_heads, 2 * window_size + 1, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)
        if proximal_init:
            with torch.no_grad():
                self.conv_k.weight.copy_(self.conv_q.weight)
                self.conv_k.bias.copy_(self.conv_q.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Queries from ``x (B, C, Tq)``, keys/values from ``c (B, C, Tk)``; ``attn_mask (B, 1, Tq, Tk)``.

        Returns ``(B, out_channels, Tq)``.
        """
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        batch, channels, t_k = k.shape
        t_q = q.size(2)
        # (B, C, T) -> (B, heads, T, head_dim)
        q = q.view(batch, self.n_heads, self.k_channels, t_q).transpose(2, 3)
        k = k.view(batch, self.n_heads, self.k_channels, t_k).transpose(2, 3)
        v = v.view(batch, self.n_heads, self.k_channels, t_k).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)
        scores = torch.matmul(q, k.transpose(-2, -1))
        # Inference works on the 2w+1 offsets inside the window only; training and export tracing keep VITS's
        # form, which multiplies by an embedding table zero-padded to all 2T-1 offsets (T = 339 tokens, window 4:
        # 677 columns for 9 non-zero ones) and skews the result with pads and reshapes. Same sums.
        in_window = self.window_size is not None and not torch.is_grad_enabled() and not torch.jit.is_tracing()
        if self.window_size is not None:
            if t_q != t_k:
                raise ValueError("relative-position attention needs self-attention (equal lengths)")
            if in_window:
                w = self.window_size
                padded = F.pad(scores, (w, w))
                band_logits = torch.matmul(q, self.emb_rel_k.transpose(-2, -1).unsqueeze(0))  # (B, H, T, 2w+1)
                _diagonal_band(padded, t_k, 2 * w + 1).add_(band_logits)
                scores = padded[..., w:w + t_k]
            else:
                rel_k = _relative_embeddings_for(self.emb_rel_k, t_k, self.window_size)
                rel_logits = torch.matmul(q, rel_k.unsqueeze(0).transpose(-2, -1))
                scores = scores + _relative_to_absolute(rel_logits)
        if self.proximal_bias:
            if t_q != t_k:
                raise ValueError("proximal bias needs self-attention (equal lengths)")
            scores = scores + _proximal_bias(t_k, scores.device, scores.dtype)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, -1e4)
            if self.block_length is not None:
                band = torch.ones_like(scores).triu(-self.block_length).tril(self.block_length)
                scores = scores * band + -1e4 * (1 - band)
        p_attn = self.drop(F.softmax(scores, dim=-1))
        out = torch.matmul(p_attn, v)
        if in_window:
            w = self.window_size
            p_band = _diagonal_band(F.pad(p_attn, (w, w)), t_k, 2 * w + 1)  # weights by offset, 0 past the ends
            out = out + torch.matmul(p_band, self.emb_rel_v.unsqueeze(0))
        elif self.window_size is not None:
            rel_v = _relative_embeddings_for(self.emb_rel_v, t_k, self.window_size)
            out = out + torch.matmul(_absolute_to_relative(p_attn), rel_v.unsqueeze(0))
        out = out.transpose(2, 3).contiguous().view(batch, channels, t_q)
        return self.conv_o(out)


class FFN(nn.Module):
    """Two 'same'-padded convolutions with ReLU (or the sigmoid-GELU approximation) and input masking."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filter_channels: int,
        kernel_size: int,
        p_dropout: float = 0.0,
        activation: Optional[str] = None,
    ):
        super().__init__()
        if activation not in (None, "relu", "gelu"):
            raise ValueError(f"FFN activation must be None, 'relu' or 'gelu', got {activation!r}")
        self.kernel_size = kernel_size
        self.activation = activation
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """``x (B, C_in, T)``, ``x_mask (B, 1, T)`` -> ``(B, C_out, T)`` masked."""
        x = self.conv_1(self._pad(x * x_mask))
        x = x * torch.sigmoid(1.702 * x) if self.activation == "gelu" else torch.relu(x)
        x = self.drop(x)
        x = self.conv_2(self._pad(x * x_mask))
        return x * x_mask


class RelPositionEncoder(nn.Module):
    """Post-norm Transformer encoder with relative-position self-attention (VITS ``attentions.Encoder``).

    ``norm_eps``: LayerNorm epsilon (VITS 1e-5; Glow-TTS, the same encoder otherwise, uses 1e-4);
    ``block_length``: banded attention (Glow-TTS option, None = full).
    """

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: Optional[int] = 4,
        norm_eps: float = 1e-5,
        block_length: Optional[int] = None,
    ):
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(
                MultiHeadAttention(
                    hidden_channels, hidden_channels, n_heads, p_dropout=p_dropout, window_size=window_size,
                    block_length=block_length,
                )
            )
            self.norm_layers_1.append(LayerNorm(hidden_channels, norm_eps))
            self.ffn_layers.append(
                FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout=p_dropout)
            )
            self.norm_layers_2.append(LayerNorm(hidden_channels, norm_eps))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """``x (B, H, T)``, ``x_mask (B, 1, T)`` -> ``(B, H, T)`` (masked)."""
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for i in range(self.n_layers):
            y = self.drop(self.attn_layers[i](x, x, attn_mask))
            x = self.norm_layers_1[i](x + y)
            y = self.drop(self.ffn_layers[i](x, x_mask))
            x = self.norm_layers_2[i](x + y)
        return x * x_mask
