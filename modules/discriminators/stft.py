"""Multi-scale complex-STFT sub-discriminator (``DiscriminatorR`` of HierSpeech++ / SpeechSR, EnCodec style).

The waveform is turned into a complex spectrogram (periodic Hann window, ``center=False``, divided by the
window's L2 norm — torchaudio's ``normalized=True``), real and imaginary parts become 2 input channels laid
out as ``(B, 2, frames, bins)``, and 2-D convolutions stride over frequency.  The window is a persistent buffer
``spec_transform.window`` because official checkpoints store it.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from modules.discriminators.norms import conv_stack, norm_layer
from modules.stft import Spectrogram


class DiscriminatorR(nn.Module):
    """One STFT resolution ``(n_fft, hop_length, win_length)``; keys ``spec_transform.window``, ``convs.{0..4}``,
    ``conv_post`` (32 channels, (3, 9) kernels striding 2 over frequency, time dilations 1, 2, 4)."""

    def __init__(self, resolution: Sequence[int], use_spectral_norm: bool = False, channels: int = 32):
        super().__init__()
        n_fft, hop_length, win_length = resolution
        self.n_fft = n_fft
        # Complex (power=None), uncentred, window-normalised; its persistent ``window`` buffer is the official key.
        self.spec_transform = Spectrogram(n_fft, hop_length, win_length, power=None, normalized=True, center=False)
        c = channels
        self.convs = nn.ModuleList(
            norm_layer(conv, use_spectral_norm)
            for conv in (
                nn.Conv2d(2, c, (3, 9), padding=(1, 4)),
                nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4)),
                nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(2, 1), padding=(2, 4)),
                nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(4, 1), padding=(4, 4)),
                nn.Conv2d(c, c, (3, 3), padding=(1, 1)),
            )
        )
        self.conv_post = norm_layer(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)), use_spectral_norm)

    def forward(self, y: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """``y (B, 1, T)`` -> (logits ``(B, N)``, feature maps)."""
        if y.size(-1) < self.n_fft:
            raise ValueError(f"DiscriminatorR: signal of {y.size(-1)} samples is shorter than n_fft {self.n_fft}")
        spec = self.spec_transform(y)  # (B, F, frames) complex
        x = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, frames, F)
        return conv_stack(self.convs, self.conv_post, x)
