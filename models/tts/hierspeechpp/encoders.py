"""Encoders and the prosody decoder of the HierSpeech++ synthesizer.

* :class:`SourceFilterEncoder` (official ``PosteriorSFEncoder``; ``enc_p`` / ``enc_p_l``): SSL features
  ("source": what is said) + log-F0 ("filter": how it is intoned) -> Gaussian over the semantic latent.
* :class:`DualAudioEncoder` (official ``PosteriorAudioEncoder``; ``enc_q``): linear spectrogram + raw
  waveform -> Gaussian over the acoustic latent.
* :class:`ProsodyMelDecoder` (official ``MelDecoder``; ``mel_decoder``): latent -> first mel bins
  (prosody distillation, training only).

Encoders follow the VITS posterior-encoder convention that training code relies on:
``forward(features..., lengths (B,), g=None, noise=None) -> (z, m, logs, x_mask)`` with
``z = (m + noise * exp(logs)) * x_mask``; ``noise`` defaults to a fresh standard-normal draw and can be
injected (parity replay) or scaled by the caller (inference noise scale).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from modules.activations import SnakeBeta
from modules.alias_free import Activation1d
from modules.commons import sequence_mask
from modules.transformer import RelPositionEncoder
from modules.vocoders.amp import average_blocks, build_amp_blocks
from modules.wavenet import WaveNet
from modules.weight_norm import weight_norm

GaussianSample = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

# Latent frames per F0 frame: F0 runs at 4x the latent rate (200 Hz for hop 320 at 16 kHz).
F0_FRAMES_PER_LATENT = 4


def lengths_to_mask(lengths: torch.Tensor, max_len: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, 1, max_len)`` float mask."""
    return sequence_mask(lengths.to(torch.long), max_len).unsqueeze(1).to(dtype)


def sample_gaussian(stats: torch.Tensor, channels: int, x_mask: torch.Tensor,
                    noise: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``stats (B, 2C, T)`` into ``m, logs`` and draw ``z = (m + noise * exp(logs)) * mask``."""
    m, logs = torch.split(stats, channels, dim=1)
    if noise is None:
        noise = torch.randn_like(m)
    z = (m + noise * torch.exp(logs)) * x_mask
    return z, m, logs


class SourceFilterEncoder(nn.Module):
    """Source-filter semantic encoder: SSL path + F0 path, each a WaveNet, fused by a third WaveNet.

    Args:
        ssl_channels: SSL feature dim (1024, MMS-300m layer 7).
        out_channels: latent channels (inter_channels).
        hidden_channels: WaveNet width.
        kernel_size, dilation_rate: WaveNet convolution geometry (5, 1).
        n_layers: total depth; each of the three WaveNets has ``n_layers // 2`` layers (official quirk).
        gin_channels: style dim.

    The F0 input ``(B, 1, 4T)`` (ln(F0+1), unvoiced 0) is brought to the latent rate by a stride-4
    convolution (kernel 9, padding 4), so its length must be exactly ``4 * T``.
    """

    def __init__(self, ssl_channels: int, out_channels: int, hidden_channels: int, kernel_size: int,
                 dilation_rate: int, n_layers: int, gin_channels: int = 0):
        super().__init__()
        self.out_channels = out_channels
        half = n_layers // 2
        self.pre_source = nn.Conv1d(ssl_channels, hidden_channels, 1)
        self.pre_filter = nn.Conv1d(1, hidden_channels, kernel_size=9, stride=F0_FRAMES_PER_LATENT, padding=4)
        self.source_enc = WaveNet(hidden_channels, kernel_size, dilation_rate, half, gin_channels=gin_channels)
        self.filter_enc = WaveNet(hidden_channels, kernel_size, dilation_rate, half, gin_channels=gin_channels)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, half, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, 2 * out_channels, 1)

    def forward(self, ssl: torch.Tensor, log_f0: torch.Tensor, lengths: torch.Tensor,
                g: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None) -> GaussianSample:
        """``ssl (B, ssl_ch, T)``, ``log_f0 (B, 1, 4T)``, ``lengths (B,)``, ``g (B, gin, 1)``, ``noise (B, C, T)``.

        Returns ``(z, m, logs)`` each ``(B, out_channels, T)`` and ``x_mask (B, 1, T)``.
        """
        frames = ssl.size(2)
        if log_f0.size(2) != F0_FRAMES_PER_LATENT * frames:
            raise ValueError(f"SourceFilterEncoder: log_f0 has {log_f0.size(2)} frames, expected "
                             f"{F0_FRAMES_PER_LATENT} x {frames} SSL frames = {F0_FRAMES_PER_LATENT * frames}")
        x_mask = lengths_to_mask(lengths, frames, ssl.dtype)
        source = self.source_enc(self.pre_source(ssl) * x_mask, x_mask, g=g)
        filt = self.filter_enc(self.pre_filter(log_f0) * x_mask, x_mask, g=g)
        stats = self.proj(self.enc(source + filt, x_mask, g=g)) * x_mask
        z, m, logs = sample_gaussian(stats, self.out_channels, x_mask, noise)
        return z, m, logs, x_mask


class DualAudioEncoder(nn.Module):
    """Acoustic posterior from a linear spectrogram (WaveNet branch) and the waveform (AMP branch).

    The waveform branch is fixed-size in the official model (not reachable from the config): a 7-tap conv
    to 16 channels, then four weight-normed strided convs (stride/kernel 8/17, 5/10, 4/8, 2/4; channels
    32, 64, 128, 192; total stride 320) each followed by the average of three AMP blocks (kernels 3, 7, 11),
    an anti-aliased SnakeBeta and ``conv_post`` (192 -> hidden). Audio length must be ``320 * T``.
    """

    down_rates = (8, 5, 4, 2)
    down_kernel_sizes = (17, 10, 8, 4)
    down_channels = (16, 32, 64, 128, 192)
    amp_kernel_sizes = (3, 7, 11)
    amp_dilations = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __init__(self, spec_channels: int, out_channels: int, hidden_channels: int, kernel_size: int,
                 dilation_rate: int, n_layers: int, gin_channels: int = 0):
        super().__init__()
        self.out_channels = out_channels
        ch = self.down_channels
        self.hop_length = 1
        for rate in self.down_rates:
            self.hop_length *= rate
        self.pre = nn.Conv1d(spec_channels, hidden_channels, 1)
        self.down_pre = nn.Conv1d(1, ch[0], 7, padding=3)
        # resblocks before downs: the official registration order (state-dict key order).
        self.resblocks = build_amp_blocks(ch[1:], self.amp_kernel_sizes, self.amp_dilations, "snakebeta")
        self.downs = nn.ModuleList(
            weight_norm(nn.Conv1d(ch[i], ch[i + 1], k, u, padding=(k - 1) // 2))
            for i, (u, k) in enumerate(zip(self.down_rates, self.down_kernel_sizes))
        )
        self.activation_post = Activation1d(SnakeBeta(ch[-1], alpha_logscale=True))
        self.conv_post = nn.Conv1d(ch[-1], hidden_channels, 7, padding=3)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(2 * hidden_channels, 2 * out_channels, 1)

    def encode_waveform(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio (B, 1, 320T)`` -> ``(B, hidden, T)`` (unmasked)."""
        x = self.down_pre(audio)
        n_kernels = len(self.amp_kernel_sizes)
        for i, down in enumerate(self.downs):
            x = average_blocks(down(x), self.resblocks, i, n_kernels)
        return self.conv_post(self.activation_post(x))

    def forward(self, spec: torch.Tensor, audio: torch.Tensor, lengths: torch.Tensor,
                g: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None) -> GaussianSample:
        """``spec (B, spec_ch, T)``, ``audio (B, 1, 320T)``, ``lengths (B,)`` -> ``(z, m, logs, x_mask)``."""
        frames = spec.size(2)
        if audio.size(-1) != self.hop_length * frames:
            raise ValueError(f"DualAudioEncoder: audio has {audio.size(-1)} samples, expected "
                             f"{self.hop_length} x {frames} spectrogram frames = {self.hop_length * frames}")
        x_mask = lengths_to_mask(lengths, frames, spec.dtype)
        wave = self.encode_waveform(audio)
        x = self.enc(self.pre(spec) * x_mask, x_mask, g=g)
        stats = self.proj(torch.cat([x, wave * x_mask], dim=1)) * x_mask
        z, m, logs = sample_gaussian(stats, self.out_channels, x_mask, noise)
        return z, m, logs, x_mask


class ProsodyMelDecoder(nn.Module):
    """Latent -> first ``mel_size`` log-mel bins through a relative-position Transformer.

    Args:
        hidden_channels: latent channels (inter_channels; the official code passes inter here).
        filter_channels: FFN width.
        n_heads, n_layers, kernel_size, p_dropout: Transformer geometry (2, 2, 5, 0.1 as released).
        mel_size: predicted bins (prosody_size, 20).
        gin_channels: style dim (0 = unconditioned).
    """

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int = 2, n_layers: int = 2,
                 kernel_size: int = 5, p_dropout: float = 0.1, mel_size: int = 20, gin_channels: int = 0):
        super().__init__()
        self.conv_pre = nn.Conv1d(hidden_channels, hidden_channels, 3, padding=1)
        self.encoder = RelPositionEncoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden_channels, mel_size, 1, bias=False)
        if gin_channels > 0:
            self.cond = nn.Conv1d(gin_channels, hidden_channels, 1)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, C, T)``, ``x_mask (B, 1, T)``, ``g (B, gin, 1)`` -> ``(B, mel_size, T)`` (masked)."""
        x = self.conv_pre(x * x_mask)
        if g is not None:
            x = x + self.cond(g)
        x = self.encoder(x * x_mask, x_mask)
        return self.proj(x) * x_mask
