"""Mel-cepstra from the WORLD spectral envelope (no pysptk): the features of MCD and of DTW alignment.

Analysis: WORLD ``cheaptrick`` power envelope ``P(ω)`` (F0 from :func:`processors.f0.world_f0`, dio +
stonemask, unless given) at a fixed frame period, then the all-pass frequency-warped cepstrum of the
log *amplitude* envelope, in SPTK's convention::

    ln |H(e^{jω})| = Σ_{m=0}^{M} c̃(m) cos(m·β(ω)),   β(ω) = ω + 2·atan(α·sin ω / (1 - α·cos ω))

β is the phase response of the first-order all-pass ``(z⁻¹ - α) / (1 - α z⁻¹)``; with α chosen per sample
rate it approximates the mel scale.  We sample ``½·ln P`` on a grid that is uniform in the *warped*
frequency (inverse warping = same formula with -α, linear interpolation between FFT bins) and take an
inverse real FFT: ``c̃(0) = c(0)``, ``c̃(m) = 2·c(m)`` for m ≥ 1.  This equals pysptk's ``sp2mc`` (log
periodogram -> cepstrum -> ``freqt``) up to the interpolation, i.e. it is a frequency-warped cepstral
representation of the envelope, not SPTK's iterative ``mcep`` estimate.

Order M and α by sample rate (ESPnet's ``evaluate_mcd`` values; SPTK's mel-approximating α):
8 kHz 13/0.31, 16 kHz 23/0.42, 22.05 kHz 34/0.45, 24 kHz 34/0.46, 32 kHz 36/0.50, 44.1 kHz 39/0.53,
48 kHz 39/0.55.  Other rates need explicit ``order`` and ``alpha``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from processors.f0 import world_f0

MCEP_SETTINGS = {
    8000: (13, 0.31),
    16000: (23, 0.42),
    22050: (34, 0.45),
    24000: (34, 0.46),
    32000: (36, 0.50),
    44100: (39, 0.53),
    48000: (39, 0.55),
}


def mcep_params(sample_rate: int, order: Optional[int] = None, alpha: Optional[float] = None) -> Tuple[int, float]:
    """(order, alpha) for ``sample_rate`` from :data:`MCEP_SETTINGS`, unless both are given explicitly."""
    if order is not None and alpha is not None:
        return order, alpha
    if sample_rate not in MCEP_SETTINGS:
        known = ", ".join(str(sr) for sr in MCEP_SETTINGS)
        raise ValueError(f"no mel-cepstrum order/alpha for {sample_rate} Hz (known: {known}); pass order and alpha")
    default_order, default_alpha = MCEP_SETTINGS[sample_rate]
    return (order if order is not None else default_order), (alpha if alpha is not None else default_alpha)


def warp_frequencies(omega: np.ndarray, alpha: float) -> np.ndarray:
    """Phase response of the first-order all-pass: linear frequency ω (rad) -> warped frequency."""
    return omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))


def envelope_to_mcep(power_envelope: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Power envelope ``(frames, K)`` (K = n_fft/2 + 1 bins, 0..π) -> mel-cepstra ``(frames, order + 1)``."""
    n_bins = power_envelope.shape[-1]
    if order + 1 > n_bins:
        raise ValueError(f"mel-cepstral order {order} needs at least {order + 1} envelope bins, got {n_bins}")
    warped_grid = np.linspace(0.0, np.pi, n_bins)  # uniform in warped frequency
    linear = warp_frequencies(warped_grid, -alpha)  # the linear frequencies they come from
    position = linear / np.pi * (n_bins - 1)  # fractional FFT bin
    low = np.clip(np.floor(position).astype(int), 0, n_bins - 2)
    frac = position - low
    log_amp = 0.5 * np.log(np.maximum(power_envelope, 1e-300))
    warped = log_amp[..., low] * (1.0 - frac) + log_amp[..., low + 1] * frac
    cepstrum = np.fft.irfft(warped, axis=-1)[..., : order + 1]
    cepstrum[..., 1:] *= 2.0
    return cepstrum


def world_mcep(
    wav: np.ndarray,
    sample_rate: int,
    frame_period_ms: float = 5.0,
    f0: Optional[np.ndarray] = None,
    order: Optional[int] = None,
    alpha: Optional[float] = None,
) -> np.ndarray:
    """Mel-cepstra ``(frames, order + 1)`` of a waveform; frame i is centred at ``i·hop`` samples.

    ``f0`` (Hz, 0 = unvoiced) fixes the frames (one per F0 value, same hop); otherwise dio + stonemask gives
    ``len(wav) // hop`` frames.
    """
    import pyworld  # lazy: optional for users without WORLD analyses

    order, alpha = mcep_params(sample_rate, order, alpha)
    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    hop = int(round(frame_period_ms / 1000.0 * sample_rate))
    if f0 is None:
        f0 = world_f0(x, sample_rate, method="dio", frame_period_ms=frame_period_ms)
    f0 = np.ascontiguousarray(np.asarray(f0, dtype=np.float64))
    if f0.size == 0:
        raise ValueError("world_mcep: no frames to analyse (audio shorter than one hop)")
    times = np.arange(f0.size, dtype=np.float64) * hop / sample_rate
    envelope = pyworld.cheaptrick(x, f0, times, sample_rate)  # (frames, fft_size // 2 + 1) power
    return envelope_to_mcep(envelope, order, alpha)
