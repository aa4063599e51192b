"""TTV-specific blocks: text encoder with style injection, w2v decoder, pitch predictor.

Checkpoint names follow ``ttv_v1/t2w2v_transformer.py``:
``enc_p.{emb, cond, encoder, encoder2, proj}``, ``w2v_decoder.{pre, enc, proj}``,
``pp.{conv_pre, ups.{0,1}, resblocks.{0..5}, conv_post, cond}``.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from modules.commons import sequence_mask
from modules.transformer import RelPositionEncoder
from modules.vocoders.amp import average_blocks
from modules.vocoders.hifigan import LRELU_SLOPE, ResBlock1
from modules.wavenet import WaveNet
from modules.weight_norm import weight_norm


class TextEncoder(nn.Module):
    """Phoneme ids (B, Tx) -> hidden x, prior mean m, log-std logs (each (B, C, Tx)) and mask (B, 1, Tx).

    emb * sqrt(C) -> encoder (3 rel-pos layers) -> + cond(g) -> encoder2 (3 layers) -> proj. The official
    constructor fixes filter = 4*C, 4 heads, kernel 9, dropout 0.2.
    """

    def __init__(self, n_vocab: int, channels: int, gin_channels: int = 256, n_heads: int = 4,
                 n_layers: int = 3, kernel_size: int = 9, p_dropout: float = 0.2):
        super().__init__()
        self.channels = channels
        self.emb = nn.Embedding(n_vocab, channels)
        nn.init.normal_(self.emb.weight, 0.0, channels ** -0.5)
        self.cond = nn.Conv1d(gin_channels, channels, 1)
        self.encoder = RelPositionEncoder(channels, 4 * channels, n_heads, n_layers, kernel_size, p_dropout)
        self.encoder2 = RelPositionEncoder(channels, 4 * channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if tokens.dim() != 2:
            raise ValueError(f"TextEncoder expects token ids (B, Tx), got shape {tuple(tokens.shape)}")
        x = (self.emb(tokens) * math.sqrt(self.channels)).transpose(1, 2)
        x_mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * x_mask, x_mask)
        x = x + self.cond(g)
        x = self.encoder2(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.channels, dim=1)
        return x, m, logs, x_mask


class W2VDecoder(nn.Module):
    """Latent (B, C, T) -> SSL-like features (B, 1024, T): pre 1x1 -> WaveNet(g) -> proj 1x1, all masked."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, dilation_rate: int = 1,
                 n_layers: int = 8, out_channels: int = 1024, gin_channels: int = 256, p_dropout: float = 0.1):
        super().__init__()
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels,
                           p_dropout=p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = self.pre(x * x_mask) * x_mask
        x = self.enc(x, x_mask, g=g)
        return self.proj(x) * x_mask


class PitchPredictor(nn.Module):
    """SSL features (B, 1024, T) + style (B, 256, 1) -> ln(F0 + 1) at 4x frame rate (B, 1, 4T).

    HiFi-GAN-like: conv_pre(k7) + cond(g) -> 2 x [LeakyReLU 0.1 -> weight-normed ConvTranspose(k4, s2) ->
    mean of 3 ResBlock1 (k 3, 5, 7)] -> LeakyReLU with PyTorch's default slope 0.01 (official quirk) ->
    conv_post (k7, no bias). Inputs are detached: the pitch loss does not train the rest of the model.
    All sizes are fixed by the official constructor.
    """

    def __init__(self, in_channels: int = 1024, channels: int = 256, gin_channels: int = 256,
                 upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4), resblock_kernel_sizes=(3, 5, 7),
                 resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5))):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(in_channels, channels, 7, padding=3)
        self.ups = nn.ModuleList(
            weight_norm(nn.ConvTranspose1d(channels // 2 ** i, channels // 2 ** (i + 1), k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)))
        for up in self.ups:
            up.weight_v.data.normal_(0.0, 0.01)
        self.resblocks = nn.ModuleList(
            ResBlock1(channels // 2 ** (i + 1), k, d)
            for i in range(len(self.ups)) for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes))
        out_ch = channels // 2 ** len(self.ups)
        self.conv_post = nn.Conv1d(out_ch, 1, 7, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, channels, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x.detach()) + self.cond(g.detach())
        for i, up in enumerate(self.ups):
            x = average_blocks(up(F.leaky_relu(x, LRELU_SLOPE)), self.resblocks, i, self.num_kernels)
        return self.conv_post(F.leaky_relu(x))  # default slope 0.01, as released
