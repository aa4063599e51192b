"""BiT-flow of HierSpeech++: volume-preserving coupling flows whose coupling nets are DiT blocks.

A DiT block (Peebles & Xie 2023) modulates a non-affine LayerNorm by shift/scale/gate vectors regressed
from a global condition ("adaLN-zero"); here the MLP is a convolution over time (kernel 5) so the block
sees local context, and the attention is plain multi-head self-attention (timm 0.6.13 ``Attention``
parameter names ``qkv``/``proj``).

Padding: the official attention has **no key padding mask**. Padded frames enter the attention holding
``shift`` (what modulation turns a zeroed frame into), and the time-convolution of the MLP reads them as
well, so a padded batch gives different numbers than the same items run one by one. ``leaky_padding=True``
reproduces that (parity with official batched outputs); the default masks the attention keys and the MLP
input so every item's output is independent of how much padding the batch adds. With no padding (B=1)
both modes compute the same thing.

Checkpoint names (per flow block): ``cond_block.{0,2}``, ``flows.{0,2,4,6}.{pre,post}``,
``flows.{i}.enc_block.{j}.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation.1}``; odd ``flows``
indices are parameter-free ``Flip`` layers.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from modules.flows import Flip
from modules.onednn_linear import linear, onednn_available, time_major_conv1d, time_major_kernel


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation of time-major ``x (B, T, C)`` by ``shift, scale (B, C)``."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class SelfAttention(nn.Module):
    """Multi-head self-attention on ``(B, T, C)`` with fused ``qkv`` and output ``proj`` (timm names).

    ``key_mask (B, T)`` (True = valid) excludes padded keys; ``None`` attends to every frame.
    """

    def __init__(self, channels: int, n_heads: int):
        super().__init__()
        if channels % n_heads != 0:
            raise ValueError(f"SelfAttention: channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.head_dim = channels // n_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(channels, 3 * channels, bias=True)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, length, channels = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, T, head_dim) each
        if not torch.is_grad_enabled() and not torch.jit.is_tracing():
            if x.device.type == "cpu" and x.dtype == torch.float32 and onednn_available():
                return self.proj(self._attend_per_head(q, k, v, key_mask))
            # other inference (no oneDNN, CUDA, half precision): torch's fused attention, same sums up to float
            # rounding (~4e-7); on one CPU core 1.3x (no mask) to 2.7x (key mask) faster than the three steps below
            mask = None if key_mask is None else key_mask[:, None, None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
            return self.proj(out.transpose(1, 2).reshape(batch, length, channels))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(batch, length, channels)
        return self.proj(out)

    def _attend_per_head(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """CPU float32 inference: softmax(q k^T * scale) v per item and head with oneDNN's products, ``(B, T, C)``.

        torch's fused CPU attention is tuned for long sequences: on one Zen 5 core, 2 heads of 96 over 339
        frames took 1.08 ms there and 0.66 ms as two oneDNN products per head (same sums to ~1e-6); the DiT
        flows of the TTV and the synthesizer call it 72 times per 12.5 s of speech.
        """
        batch, heads, length, dim = q.shape
        out = q.new_empty(batch, length, heads, dim)
        for b in range(batch):
            for h in range(heads):
                scores = linear(q[b, h] * self.scale, k[b, h].contiguous())  # (T, T)
                if key_mask is not None:
                    scores.masked_fill_(~key_mask[b].unsqueeze(0), float("-inf"))
                out[b, :, h] = linear(scores.softmax(dim=-1), v[b, h].t().contiguous())
        return out.reshape(batch, length, heads * dim)


class ConvFeedForward(nn.Module):
    """Time-convolution MLP on ``(B, T, C)``: Conv1d(k) -> tanh-GELU -> dropout -> Conv1d(1) (masked)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 5, p_dropout: float = 0.1):
        super().__init__()
        self.fc1 = nn.Conv1d(channels, hidden_channels, kernel_size, padding=(kernel_size - 1) // 2)
        self.fc2 = nn.Conv1d(hidden_channels, channels, 1)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """``x (B, T, C)``, ``x_mask (B, 1, T)`` -> ``(B, T, C)``; the input is *not* masked here."""
        if not (self.training or torch.is_grad_enabled() or torch.jit.is_tracing()):
            return self._forward_time_major(x, x_mask)
        h = self.drop(F.gelu(self.fc1(x.transpose(1, 2)), approximate="tanh"))
        h = self.drop(self.fc2(h * x_mask) * x_mask)
        return h.transpose(1, 2)

    def _forward_time_major(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """Inference: both convolutions as GEMMs on the time-major input, no transposes (same products)."""
        pad = self.fc1.padding[0]
        fc1, fc2 = time_major_kernel(self.fc1), self.fc2.weight.detach()[..., 0]  # views, no weight copies
        h = time_major_conv1d(F.pad(x, (0, 0, pad, pad)), fc1, self.fc1.bias, self.fc1.kernel_size[0], gelu_tanh=True)
        mask = x_mask.transpose(1, 2)  # (B, T, 1)
        h = h.mul_(mask)
        return linear(h, fc2, self.fc2.bias).mul_(mask)


class DiTConvBlock(nn.Module):
    """adaLN-zero Transformer block on time-major features, conditioned by a vector ``c (B, C)``."""

    def __init__(
        self,
        channels: int,
        n_heads: int,
        mlp_ratio: float = 4.0,
        kernel_size: int = 5,
        p_dropout: float = 0.1,
        leaky_padding: bool = False,
    ):
        super().__init__()
        self.leaky_padding = leaky_padding
        self.norm1 = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(channels, n_heads)
        self.norm2 = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.mlp = ConvFeedForward(channels, int(channels * mlp_ratio), kernel_size, p_dropout)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(channels, 6 * channels))

    def forward(self, x: torch.Tensor, c: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """``x (B, T, C)``, ``c (B, C)``, ``x_mask (B, T, 1)`` -> ``(B, T, C)`` (padded frames 0)."""
        x = x * x_mask
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(6, dim=1)
        key_mask = None if self.leaky_padding else x_mask.squeeze(-1) > 0
        attn_in = modulate(self.norm1(x) * x_mask, shift_a, scale_a)
        x = x + gate_a.unsqueeze(1) * self.attn(attn_in, key_mask) * x_mask
        mlp_in = modulate(self.norm2(x), shift_m, scale_m)
        if not self.leaky_padding:
            mlp_in = mlp_in * x_mask
        return x + gate_m.unsqueeze(1) * self.mlp(mlp_in, x_mask.transpose(1, 2))


class DiTCouplingLayer(nn.Module):
    """Mean-only affine coupling: ``x1 <- x1 + m(x0)`` with ``m`` a stack of DiT blocks (log-det 0).

    Args:
        channels: input channels (split in two halves).
        hidden_channels: width of the DiT blocks.
        n_blocks: number of DiT blocks.
        n_heads: attention heads (2 in the synthesizer, 4 in TTV).
        kernel_size: MLP time-convolution kernel.
        p_dropout: dropout inside the MLP.
        leaky_padding: reproduce the official unmasked attention (see module docstring).
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        n_blocks: int = 3,
        n_heads: int = 2,
        kernel_size: int = 5,
        p_dropout: float = 0.1,
        leaky_padding: bool = False,
    ):
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"DiTCouplingLayer: channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc_block = nn.ModuleList(
            DiTConvBlock(hidden_channels, n_heads, 4.0, kernel_size, p_dropout, leaky_padding) for _ in range(n_blocks)
        )
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT init: xavier-uniform weights, zero biases, zero adaLN output and ``post`` (identity start)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for block in self.enc_block:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def shift(self, x0: torch.Tensor, x_mask: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The coupling's additive shift ``m (B, C/2, T)`` computed from the conditioning half ``x0``."""
        h = (self.pre(x0) * x_mask).transpose(1, 2)
        mask_t = x_mask.transpose(1, 2)
        for block in self.enc_block:
            h = block(h, c, mask_t)
        return self.post(h.transpose(1, 2)) * x_mask

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False):
        """``x (B, C, T)``, ``x_mask (B, 1, T)``, ``g (B, hidden)`` -> ``(y, logdet)`` or ``x`` in reverse."""
        if g is None:
            raise ValueError("DiTCouplingLayer needs the block condition g (B, hidden_channels)")
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        m = self.shift(x0, x_mask, g)
        if not reverse:
            x1 = m + x1 * x_mask
            return torch.cat([x0, x1], 1), torch.zeros(x.size(0), dtype=x.dtype, device=x.device)
        x1 = (x1 - m) * x_mask
        return torch.cat([x0, x1], 1)


class BiTFlow(nn.Module):
    """Stack of DiT couplings and channel flips (official ``ResidualCouplingBlock_Transformer``).

    The global style ``g (B, gin, 1)`` passes once through ``cond_block`` (Linear -> SiLU -> Linear) and the
    result conditions every coupling.

    Args:
        channels: latent channels (inter_channels).
        hidden_channels: DiT width.
        kernel_size: MLP time-convolution kernel (5 in every released model).
        n_layers: DiT blocks per coupling (3).
        n_flows: couplings (4).
        gin_channels: style dim (256).
        n_heads: attention heads (2 synthesizer, 4 TTV).
        p_dropout: dropout in the MLPs (0.1 as released).
        leaky_padding: official unmasked attention (parity); default masked.
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int = 5,
        n_layers: int = 3,
        n_flows: int = 4,
        gin_channels: int = 256,
        n_heads: int = 2,
        p_dropout: float = 0.1,
        leaky_padding: bool = False,
    ):
        super().__init__()
        if gin_channels <= 0:
            raise ValueError("BiTFlow needs a global condition (gin_channels > 0)")
        self.cond_block = nn.Sequential(
            nn.Linear(gin_channels, 4 * hidden_channels), nn.SiLU(), nn.Linear(4 * hidden_channels, hidden_channels)
        )
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                DiTCouplingLayer(channels, hidden_channels, n_layers, n_heads, kernel_size, p_dropout, leaky_padding)
            )
            self.flows.append(Flip())

    def set_leaky_padding(self, leaky: bool) -> None:
        """Switch between the official unmasked attention (True) and masked attention (False)."""
        for module in self.modules():
            if isinstance(module, DiTConvBlock):
                module.leaky_padding = leaky

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """``x (B, C, T)``, ``x_mask (B, 1, T)``, ``g (B, gin, 1)`` -> ``(B, C, T)`` (log-det is 0)."""
        c = self.cond_block(g.squeeze(2))
        if not reverse:
            for flow in self.flows:
                x, _ = flow(x, x_mask, g=c)
        else:
            for flow in reversed(self.flows):
                x = flow(x, x_mask, g=c, reverse=True)
        return x
