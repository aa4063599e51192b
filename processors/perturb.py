"""NANSY-style speaker perturbation for the speaker-agnostic semantic path of HierSpeech++.

HierSpeech++ trains one of its two source-filter semantic encoders on SSL features of a *perturbed* copy of the
utterance so that the path cannot carry speaker identity (``aug: true`` in the released config; the paper and
README point at NANSY, Choi et al. 2021). NANSY perturbs with three functions, all reproduced here:

* formant shift (Praat "Change gender", formant shift ratio ~ U(1, 1.4), inverted with probability 1/2),
* pitch shift / pitch-range change (same Praat call: new median = median · U(1, 2)^±1, range factor U(1, 1.5)^±1),
* a random parametric equaliser: a low shelf, a chain of peaking filters at log-spaced centres and a high shelf,
  each with gain ~ U(-12, 12) dB and Q = q_min · (q_max / q_min)^U(0, 1) (biquads from the RBJ audio-EQ cookbook,
  applied with ``scipy.signal.sosfilt``).

Every random draw comes from an explicit ``numpy.random.Generator`` so a seed reproduces the output exactly.
Inputs and outputs are mono float32 numpy arrays of the same length; the output peak is brought back to the
input's peak so perturbation never changes the level the SSL model sees by more than the EQ colouring itself.

Praat comes from ``praat-parselmouth`` (PyPI wheel); it is imported lazily so the PEQ works without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy.signal import sosfilt

__all__ = [
    "PerturbConfig",
    "random_ratio",
    "praat_change_gender",
    "formant_and_pitch_shift",
    "peaking_sos",
    "shelf_sos",
    "random_peq",
    "perturb",
]


@dataclass
class PerturbConfig:
    """Ranges of the random perturbation (defaults = NANSY's; shelves moved below Nyquist for 16 kHz)."""

    formant_shift_max: float = 1.4
    pitch_shift_max: float = 2.0
    pitch_range_max: float = 1.5
    pitch_floor_hz: float = 75.0
    pitch_ceiling_hz: float = 600.0
    peq_peaks: int = 8
    peq_gain_db: float = 12.0
    peq_q_min: float = 2.0
    peq_q_max: float = 5.0
    peq_low_hz: float = 60.0
    peq_high_hz: float = 7000.0  # NANSY uses 10 kHz at 44.1 kHz; a shelf must sit below 8 kHz at 16 kHz
    apply_formant_pitch: bool = True
    apply_peq: bool = True


def random_ratio(rng: np.random.Generator, max_ratio: float) -> float:
    """U(1, max_ratio), inverted with probability 1/2 (so shifts go both up and down)."""
    if max_ratio < 1.0:
        raise ValueError(f"max_ratio must be >= 1, got {max_ratio}")
    ratio = float(rng.uniform(1.0, max_ratio))
    return ratio if rng.random() < 0.5 else 1.0 / ratio


def _check_wave(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"perturbation expects mono 1-D audio, got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError("perturbation got empty audio")
    return wav.astype(np.float64)


def _fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    if wav.shape[0] >= length:
        return wav[:length]
    return np.pad(wav, (0, length - wav.shape[0]))


def _restore_peak(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    peak_in = float(np.max(np.abs(reference)))
    peak_out = float(np.max(np.abs(out)))
    if peak_out > 0.0 and peak_in > 0.0:
        out = out * (min(peak_in, 0.999) / peak_out)
    return out


def _import_parselmouth():
    try:
        import parselmouth
        from parselmouth.praat import call
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "formant/pitch perturbation needs praat-parselmouth: pip install praat-parselmouth"
        ) from err
    return parselmouth, call


def praat_change_gender(
    wav: np.ndarray,
    sample_rate: int,
    formant_shift_ratio: float,
    pitch_shift_ratio: float,
    pitch_range_ratio: float,
    pitch_floor_hz: float = 75.0,
    pitch_ceiling_hz: float = 600.0,
    praat_seed: Optional[int] = None,
) -> np.ndarray:
    """Praat "Change gender": formant shift, median-pitch shift and pitch-range scaling, duration kept.

    Praat's PSOLA resynthesis draws from Praat's own global random generator (unvoiced stretches), so the
    output is only reproducible when ``praat_seed`` is given; the generator is re-randomised afterwards.

    Args:
        wav: (T,) mono audio.
    Returns:
        (T,) float64 audio (same length; Praat's output is cropped or zero-padded by at most a few samples).
    """
    parselmouth, call = _import_parselmouth()
    wav = _check_wave(wav)
    sound = parselmouth.Sound(wav, sampling_frequency=float(sample_rate))
    pitch = sound.to_pitch(pitch_floor=pitch_floor_hz, pitch_ceiling=pitch_ceiling_hz)
    median = call(pitch, "Get quantile", 0.0, 0.0, 0.5, "Hertz")
    # Unvoiced clips: Praat returns NaN; a "new pitch median" of 0 tells Change gender to leave pitch alone.
    new_median = float(median) * pitch_shift_ratio if np.isfinite(median) else 0.0
    if praat_seed is not None:
        parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({int(praat_seed)})")
    try:
        out = call(
            sound,
            "Change gender",
            pitch_floor_hz,
            pitch_ceiling_hz,
            float(formant_shift_ratio),
            new_median,
            float(pitch_range_ratio),
            1.0,
        )
    finally:
        if praat_seed is not None:
            parselmouth.praat.run("random_initializeSafelyAndUnpredictably ()")
    return _fit_length(np.asarray(out.values, dtype=np.float64)[0], wav.shape[0])


def formant_and_pitch_shift(
    wav: np.ndarray, sample_rate: int, rng: np.random.Generator, config: PerturbConfig
) -> Tuple[np.ndarray, dict]:
    """Draw NANSY's random ratios and apply them; returns (audio, drawn parameters)."""
    params = {
        "formant_shift_ratio": random_ratio(rng, config.formant_shift_max),
        "pitch_shift_ratio": random_ratio(rng, config.pitch_shift_max),
        "pitch_range_ratio": random_ratio(rng, config.pitch_range_max),
    }
    praat_seed = int(rng.integers(1, 2**31 - 1))
    out = praat_change_gender(
        wav,
        sample_rate,
        pitch_floor_hz=config.pitch_floor_hz,
        pitch_ceiling_hz=config.pitch_ceiling_hz,
        praat_seed=praat_seed,
        **params,
    )
    return out, params


# ----------------------------------------------------------------------------------------------- parametric EQ
def peaking_sos(center_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """Second-order peaking filter (RBJ cookbook) as one SOS row (1, 6)."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * center_hz / sample_rate
    alpha = np.sin(w0) / (2.0 * q)
    cos_w0 = np.cos(w0)
    b = np.array([1.0 + alpha * amp, -2.0 * cos_w0, 1.0 - alpha * amp])
    a = np.array([1.0 + alpha / amp, -2.0 * cos_w0, 1.0 - alpha / amp])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def shelf_sos(cutoff_hz: float, gain_db: float, q: float, sample_rate: int, kind: str) -> np.ndarray:
    """Second-order low or high shelf (RBJ cookbook) as one SOS row (1, 6)."""
    if kind not in ("low", "high"):
        raise ValueError(f"shelf kind must be 'low' or 'high', got {kind!r}")
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * cutoff_hz / sample_rate
    alpha = np.sin(w0) / (2.0 * q)
    cos_w0 = np.cos(w0)
    sqrt_a2 = 2.0 * np.sqrt(amp) * alpha
    sign = 1.0 if kind == "low" else -1.0
    b = amp * np.array(
        [
            (amp + 1.0) - sign * (amp - 1.0) * cos_w0 + sqrt_a2,
            sign * 2.0 * ((amp - 1.0) - sign * (amp + 1.0) * cos_w0),
            (amp + 1.0) - sign * (amp - 1.0) * cos_w0 - sqrt_a2,
        ]
    )
    a = np.array(
        [
            (amp + 1.0) + sign * (amp - 1.0) * cos_w0 + sqrt_a2,
            -sign * 2.0 * ((amp - 1.0) + sign * (amp + 1.0) * cos_w0),
            (amp + 1.0) + sign * (amp - 1.0) * cos_w0 - sqrt_a2,
        ]
    )
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def random_peq_sos(rng: np.random.Generator, sample_rate: int, config: PerturbConfig) -> np.ndarray:
    """Draw a random PEQ: low shelf + ``peq_peaks`` peaking filters + high shelf, as SOS (peq_peaks + 2, 6)."""
    high = min(config.peq_high_hz, 0.45 * sample_rate)
    if not 0.0 < config.peq_low_hz < high:
        raise ValueError(f"PEQ band [{config.peq_low_hz}, {high}] Hz is empty at {sample_rate} Hz")
    n_filters = config.peq_peaks + 2
    gains = rng.uniform(-config.peq_gain_db, config.peq_gain_db, size=n_filters)
    qs = config.peq_q_min * (config.peq_q_max / config.peq_q_min) ** rng.uniform(0.0, 1.0, size=n_filters)
    # Peak centres sit strictly between the two shelves, log-spaced like NANSY's.
    centres = np.geomspace(config.peq_low_hz, high, config.peq_peaks + 2)[1:-1]
    rows = [shelf_sos(config.peq_low_hz, gains[0], qs[0], sample_rate, "low")]
    rows += [peaking_sos(f, g, q, sample_rate) for f, g, q in zip(centres, gains[1:-1], qs[1:-1])]
    rows.append(shelf_sos(high, gains[-1], qs[-1], sample_rate, "high"))
    return np.concatenate(rows, axis=0)


def random_peq(
    wav: np.ndarray, sample_rate: int, rng: np.random.Generator, config: Optional[PerturbConfig] = None
) -> np.ndarray:
    """Filter (T,) audio through a freshly drawn random PEQ; same length, peak restored."""
    config = config or PerturbConfig()
    wav = _check_wave(wav)
    out = sosfilt(random_peq_sos(rng, sample_rate, config), wav)
    return _restore_peak(out, wav)


def perturb(
    wav: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    config: Optional[PerturbConfig] = None,
) -> np.ndarray:
    """Full NANSY perturbation (formant + pitch via Praat, then random PEQ) of (T,) audio -> (T,) float32."""
    config = config or PerturbConfig()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    source = _check_wave(wav)
    out = source
    if config.apply_formant_pitch:
        out, _ = formant_and_pitch_shift(out, sample_rate, rng, config)
    if config.apply_peq:
        out = sosfilt(random_peq_sos(rng, sample_rate, config), out)
    out = _restore_peak(out, source)
    return np.nan_to_num(out).astype(np.float32)
