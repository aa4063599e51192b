"""A torchaudio-compatible STFT module in plain torch, shared by the front ends and the STFT discriminators.

``forward(wav, lengths=None)`` takes ``(B, T)`` or ``(B, 1, T)``; with ``lengths`` each item is padded from
*its own* valid samples (exactly as if it were processed alone).  The Hann window is a buffer, so
``.to(device)`` moves it and the same object serves CPU and GPU.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Spectrogram", "as_batch", "pad_each"]


# --------------------------------------------------------------------------- batch helpers
def as_batch(wav: Tensor) -> Tensor:
    """``(T,)``, ``(B, T)`` or ``(B, 1, T)`` -> ``(B, T)``."""
    if wav.dim() == 1:
        return wav.unsqueeze(0)
    if wav.dim() == 3:
        if wav.size(1) != 1:
            raise ValueError(f"expected a mono batch (B, 1, T), got shape {tuple(wav.shape)}")
        return wav.squeeze(1)
    if wav.dim() != 2:
        raise ValueError(f"expected waveform (T,), (B, T) or (B, 1, T), got shape {tuple(wav.shape)}")
    return wav


def pad_each(wav: Tensor, lengths: Optional[Tensor], left: int, right: int, mode: str = "reflect") -> Tensor:
    """Pad every item ``(B, T)`` by ``left``/``right`` samples taken from its own valid region.

    Without ``lengths`` the whole batch is padded at once.  With ``lengths`` item b uses ``wav[b, :lengths[b]]``
    so a short item is padded exactly as if it were alone; the rest of the row stays zero.
    """
    if lengths is None:
        if left == right == 0:
            return wav
        if mode == "reflect" and wav.size(-1) <= max(left, right):
            raise ValueError(f"audio of {wav.size(-1)} samples is too short for reflect padding of {max(left, right)}")
        return F.pad(wav.unsqueeze(1), (left, right), mode=mode).squeeze(1)
    out = wav.new_zeros(wav.size(0), wav.size(1) + left + right)
    for b, length in enumerate(lengths.tolist()):
        if length > wav.size(1):
            raise ValueError(f"length {length} of item {b} exceeds the padded batch width {wav.size(1)}")
        if mode == "reflect" and length <= max(left, right):
            raise ValueError(f"item {b} has {length} samples, too short for reflect padding of {max(left, right)}")
        seg = wav[b : b + 1, :length].unsqueeze(1)
        out[b, : length + left + right] = F.pad(seg, (left, right), mode=mode)[0, 0]
    return out


# --------------------------------------------------------------------------- generic STFT module
class Spectrogram(nn.Module):
    """torchaudio-compatible ``Spectrogram``: ``(B, T)`` -> ``(B, n_fft // 2 + 1, frames)``.

    ``power`` None returns the complex STFT, 1 the magnitude, 2 the power.  ``normalized`` divides by the
    window's L2 norm (torchaudio's "window" normalisation).  The Hann window is a buffer named ``window``
    (persistent by default, matching torchaudio's state_dict key, e.g. ``spec_transform.window`` in MS-STFT
    discriminators).
    """

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        win_length: Optional[int] = None,
        power: Optional[float] = 2.0,
        normalized: bool = False,
        center: bool = True,
        pad_mode: str = "reflect",
        persistent_window: bool = True,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length or n_fft
        self.power = power
        self.normalized = normalized
        self.center = center
        self.pad_mode = pad_mode
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=persistent_window)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Frames produced for each input length."""
        if self.center:
            return lengths // self.hop_length + 1
        return (lengths - self.n_fft) // self.hop_length + 1

    def forward(self, wav: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        wav = as_batch(wav)
        if self.center:  # pad per item ourselves so padded batches match single-item results
            wav = pad_each(wav, lengths, self.n_fft // 2, self.n_fft // 2, self.pad_mode)
        spec = torch.stft(
            wav,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(wav.dtype),
            center=False,
            onesided=True,
            return_complex=True,
        )
        if self.normalized:
            spec = spec / self.window.pow(2).sum().sqrt()
        if self.power is None:
            return spec
        mag = spec.abs()
        return mag if self.power == 1.0 else mag.pow(self.power)
