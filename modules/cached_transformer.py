"""Transformer encoder stack in ``torch.nn.TransformerEncoderLayer``'s parameter layout, with a KV cache.

Parameter names (those of VALL-E's reference checkpoints): ``layers.N.self_attn.in_proj_weight`` (3D, D; q, k,
v stacked), ``.in_proj_bias``, ``.out_proj.{weight,bias}``, ``layers.N.linear1/linear2``, ``layers.N.norm1/norm2``
and the stack's final ``norm`` (pre-LN only). Norms are plain LayerNorms or :class:`~modules.norms.AdaptiveLayerNorm`
(conditioned on a vector passed to ``forward``).

Masks are boolean and mean "may attend" (``F.scaled_dot_product_attention`` convention): ``(B or 1, 1, Lq, Lk)``.
A :class:`KVCache` keeps every layer's keys and values so that incremental decoding only computes the new rows;
attention has no positional term, so the slot order of cached keys is irrelevant (positions live in the inputs).
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from modules.norms import AdaptiveLayerNorm


class KVCache:
    """Per-layer keys/values ``(B, H, L, Dh)`` preallocated for ``capacity`` slots; ``length`` slots are filled."""

    def __init__(self, num_layers: int, capacity: int):
        self.capacity = capacity
        self.length = 0
        self.keys: List[Optional[torch.Tensor]] = [None] * num_layers
        self.values: List[Optional[torch.Tensor]] = [None] * num_layers
        self._pending = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v (B, H, n, Dh)`` after the filled slots; return all keys/values so far."""
        n = k.shape[2]
        if self.keys[layer] is None:
            shape = (k.shape[0], k.shape[1], self.capacity, k.shape[3])
            self.keys[layer] = k.new_empty(shape)
            self.values[layer] = v.new_empty(shape)
        end = self.length + n
        if end > self.capacity:
            raise ValueError(f"KVCache: {end} slots needed, capacity {self.capacity}")
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        self._pending = n
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def commit(self) -> None:
        """Advance past the rows written by the last forward pass (called once per pass by the stack)."""
        self.length += self._pending
        self._pending = 0


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameters and init (batch-first)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SelfAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, x: torch.Tensor, mask: Optional[torch.Tensor], cache: Optional[KVCache] = None, layer: int = 0
    ) -> torch.Tensor:
        """``x (B, L, D)``, ``mask (B|1, 1, L, Lk)`` bool or None -> ``(B, L, D)``.

        With ``cache``, the keys are the cached ones followed by this call's ``L`` rows (``Lk`` = all of them).
        """
        batch, length, dim = x.shape
        heads = self.num_heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.view(batch, length, heads, dim // heads).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.append(layer, k, v)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class TransformerLayer(nn.Module):
    """Encoder layer: self-attention + ReLU FFN, pre-LN (``norm_first``) or post-LN, plain or adaptive norms."""

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1, norm_first: bool = True,
        adaptive_norm: bool = False, eps: float = 1e-5,
    ):  # fmt: skip
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = SelfAttention(dim, num_heads, dropout)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = AdaptiveLayerNorm(dim, eps) if adaptive_norm else nn.LayerNorm(dim, eps=eps)
        self.norm2 = AdaptiveLayerNorm(dim, eps) if adaptive_norm else nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)  # inside the FFN
        self.dropout1 = nn.Dropout(dropout)  # on the attention branch
        self.dropout2 = nn.Dropout(dropout)  # on the FFN branch

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(torch.relu(self.linear1(x)))))

    def forward(
        self, x: torch.Tensor, mask: Optional[torch.Tensor], cond: Optional[torch.Tensor] = None,
        cache: Optional[KVCache] = None, layer: int = 0,
    ) -> torch.Tensor:  # fmt: skip
        """``x (B, L, D)`` -> ``(B, L, D)``; ``cond (1|B, D)`` for adaptive norms."""
        norm1, norm2 = _bind(self.norm1, cond), _bind(self.norm2, cond)
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(norm1(x), mask, cache, layer))
            return x + self._ffn(norm2(x))
        x = norm1(x + self.dropout1(self.self_attn(x, mask, cache, layer)))
        return norm2(x + self._ffn(x))


def _bind(norm: nn.Module, cond: Optional[torch.Tensor]):
    if isinstance(norm, AdaptiveLayerNorm):
        if cond is None:
            raise ValueError("an adaptive-norm transformer needs a condition vector")
        return lambda x: norm(x, cond)
    return norm


class TransformerStack(nn.Module):
    """``layers`` (ModuleList of :class:`TransformerLayer`) + final ``norm`` when pre-LN."""

    def __init__(
        self, dim: int, num_heads: int, num_layers: int, ffn_dim: int, dropout: float = 0.1,
        norm_first: bool = True, adaptive_norm: bool = False, eps: float = 1e-5,
    ):  # fmt: skip
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, ffn_dim, dropout, norm_first, adaptive_norm, eps) for _ in range(num_layers)
        )
        self.norm: Optional[nn.Module] = None
        if norm_first:
            self.norm = AdaptiveLayerNorm(dim, eps) if adaptive_norm else nn.LayerNorm(dim, eps=eps)

    def forward(
        self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, cond: Optional[torch.Tensor] = None,
        cache: Optional[KVCache] = None,
    ) -> torch.Tensor:  # fmt: skip
        """``x (B, L, D)``, ``mask (B|1, 1, L, Lk)`` bool (True = may attend) -> ``(B, L, D)``."""
        for index, layer in enumerate(self.layers):
            x = layer(x, mask, cond, cache, index)
        if cache is not None:
            cache.commit()
        if self.norm is not None:
            x = _bind(self.norm, cond)(x)
        return x
