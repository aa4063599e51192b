"""F0 extraction and the log-F0 representation of HierSpeech++.

* :func:`yaapt_f0` — YAAPT through ``amfm_decompy`` with the official HierSpeech++ settings: 160 zeros (half a
  20 ms frame) added at both ends, ``frame_length`` 20 ms, ``frame_space`` 5 ms, ``nccf_thresh1`` 0.25,
  ``tda_frame_length`` 25 ms, ``samp_values`` (no interpolation, 0 = unvoiced).  ``f0_max`` is 1100 in the VC
  script (:data:`F0_MAX_VC`) and the library default 400 in the TTV preprocessing (:data:`F0_MAX_TTV`).  On a
  YAAPT failure the official code returns zeros; so do we, with a warning naming the failure.
* :func:`world_f0` — pyworld ``dio`` + ``stonemask`` or ``harvest`` at the same 5 ms hop.
* :func:`to_log_f0` — ``ln(F0 + 1)``, unvoiced exactly 0: the F0 input/target of the synthesizer and TTV, at
  4× the latent frame rate (200 Hz at 16 kHz / hop 320); :func:`align_f0_length` fits it to ``4·T``.
* :func:`vc_pad_source` / :func:`voiced_stats` / :func:`retarget_f0` / :func:`vc_log_f0` — the F0 handling of
  the official ``inference_vc.VC``: the source is zero-padded to the next multiple of 1280 samples (a full 1280
  more when already a multiple), its voiced F0 is z-normalised and moved to the prompt's voiced mean/std,
  clipped at 0, and only then logged.  The prompt's F0 comes from the *unpadded* prompt.

Arrays are numpy float64 in Hz, shape ``(frames,)`` for one clip.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Tuple

import numpy as np
import torch

__all__ = [
    "F0_MAX_VC",
    "F0_MAX_TTV",
    "yaapt_f0",
    "world_f0",
    "extract_f0",
    "to_log_f0",
    "align_f0_length",
    "vc_pad_source",
    "voiced_stats",
    "retarget_f0",
    "vc_log_f0",
]

logger = logging.getLogger(__name__)

F0_MAX_VC = 1100.0  # inference_vc.get_yaapt_f0
F0_MAX_TTV = 400.0  # ttv_v1 preprocessing: amfm_decompy's default
VC_PAD_MULTIPLE = 1280  # inference_vc pads the source to a multiple of this


def yaapt_f0(
    wav: np.ndarray,
    sample_rate: int = 16000,
    f0_max: float = F0_MAX_VC,
    f0_min: float = 60.0,
    frame_length_ms: float = 20.0,
    frame_space_ms: float = 5.0,
    interpolate: bool = False,
    fast: bool = True,
) -> np.ndarray:
    """YAAPT F0 in Hz ``(N // hop,)`` (hop = frame_space) with the official settings; 0 = unvoiced.

    ``wav`` is mono float audio ``(N,)``; it is processed in float64 like the official code.  On failure
    (YAAPT raises on silence and very short clips) a zero contour of ``N // hop`` frames is returned with a
    warning, as the official preprocessing does.  ``fast`` runs amfm_decompy's spectral and temporal tracking
    steps without their per-frame Python overhead (processors/yaapt_fast.py: same arithmetic, same F0,
    ~1.6x faster overall); ``False`` runs the library untouched.
    """
    import amfm_decompy.basic_tools as basic  # lazy: only F0 users need amfm_decompy
    import amfm_decompy.pYAAPT as pYAAPT

    from processors.yaapt_fast import use_fast_yaapt

    wav = np.asarray(wav, dtype=np.float64).reshape(-1)
    hop = int(round(frame_space_ms / 1000.0 * sample_rate))
    to_pad = int(frame_length_ms / 1000.0 * sample_rate) // 2
    padded = np.pad(wav, (to_pad, to_pad), mode="constant", constant_values=0.0)
    params = {
        "frame_length": frame_length_ms,
        "frame_space": frame_space_ms,
        "nccf_thresh1": 0.25,
        "tda_frame_length": 25.0,
        "f0_min": f0_min,
        "f0_max": f0_max,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # YAAPT divides by zero on silent frames
            warnings.simplefilter("ignore", UserWarning)  # scipy medfilt on very short clips
            with use_fast_yaapt(pYAAPT) if fast else contextlib.nullcontext():
                pitch = pYAAPT.yaapt(basic.SignalObj(padded, sample_rate), **params)
        f0 = pitch.samp_interp if interpolate else pitch.samp_values
        return np.asarray(f0, dtype=np.float64)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError) as err:
        frames = wav.shape[0] // hop
        warnings.warn(f"YAAPT failed ({type(err).__name__}: {err}); returning {frames} unvoiced frames", RuntimeWarning)
        return np.zeros(frames, dtype=np.float64)


def world_f0(
    wav: np.ndarray,
    sample_rate: int = 16000,
    method: str = "dio",
    frame_period_ms: float = 5.0,
    f0_min: float = 60.0,
    f0_max: float = F0_MAX_VC,
) -> np.ndarray:
    """pyworld F0 in Hz at ``frame_period_ms``: ``dio`` refined by ``stonemask``, or ``harvest``; 0 = unvoiced.

    pyworld returns ``N // hop + 1`` frames (frame 0 centred at sample 0); the last one is dropped so the length
    matches YAAPT and the ``4·T`` convention (``N // hop``).
    """
    import pyworld  # lazy: optional for YAAPT-only users

    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    if method == "dio":
        coarse, times = pyworld.dio(x, sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=frame_period_ms)
        f0 = pyworld.stonemask(x, coarse, times, sample_rate)
    elif method == "harvest":
        f0, _ = pyworld.harvest(x, sample_rate, f0_floor=f0_min, f0_ceil=f0_max, frame_period=frame_period_ms)
    else:
        raise ValueError(f"unknown pyworld F0 method {method!r}; use 'dio' or 'harvest'")
    hop = int(round(frame_period_ms / 1000.0 * sample_rate))
    return align_f0_length(np.asarray(f0, dtype=np.float64), x.shape[0] // hop)


def extract_f0(wav: np.ndarray, sample_rate: int = 16000, method: str = "yaapt", f0_max: float = F0_MAX_VC,
               fast: bool = True) -> np.ndarray:
    """Dispatch by name: ``yaapt`` (official), ``dio`` or ``harvest``; Hz, ``(N // hop,)`` at 5 ms.

    ``fast=False`` runs YAAPT exactly as amfm_decompy ships it (see :func:`yaapt_f0`; same F0 either way).
    """
    if method == "yaapt":
        return yaapt_f0(wav, sample_rate, f0_max=f0_max, fast=fast)
    if method in ("dio", "harvest"):
        return world_f0(wav, sample_rate, method=method, f0_max=f0_max)
    raise ValueError(f"unknown F0 method {method!r}; use 'yaapt', 'dio' or 'harvest'")


def to_log_f0(f0_hz: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``ln(F0 + 1)`` in float32 with unvoiced (F0 <= 0) exactly 0; same shape as the input."""
    f0 = torch.as_tensor(f0_hz).float()
    return torch.where(f0 > 0, torch.log(f0 + 1.0), torch.zeros_like(f0))


def align_f0_length(f0: np.ndarray | torch.Tensor, length: int):
    """Trim or zero-pad (unvoiced) the last axis to ``length`` frames, e.g. ``4·T`` latent frames."""
    current = f0.shape[-1]
    if current >= length:
        return f0[..., :length]
    if isinstance(f0, torch.Tensor):
        return torch.nn.functional.pad(f0, (0, length - current))
    return np.pad(f0, [(0, 0)] * (f0.ndim - 1) + [(0, length - current)])


def vc_pad_source(wav: np.ndarray | torch.Tensor, multiple: int = VC_PAD_MULTIPLE):
    """Zero-pad the last axis to the next multiple of ``multiple`` (a full ``multiple`` more if already one).

    This is the source padding of the official VC script; it applies to YAAPT and the SSL input alike.
    """
    length = wav.shape[-1]
    extra = (length // multiple + 1) * multiple - length
    if isinstance(wav, torch.Tensor):
        return torch.nn.functional.pad(wav, (0, extra))
    return np.pad(wav, [(0, 0)] * (wav.ndim - 1) + [(0, extra)])


def voiced_stats(f0_hz: np.ndarray) -> Tuple[float, float]:
    """Mean and (population, ddof 0) std of the voiced frames; ``(0, 0)`` when nothing is voiced."""
    voiced = np.asarray(f0_hz)[np.asarray(f0_hz) != 0]
    if voiced.size == 0:
        return 0.0, 0.0
    return float(voiced.mean()), float(voiced.std())


def retarget_f0(src_f0_hz: np.ndarray, trg_f0_hz: np.ndarray) -> np.ndarray:
    """Move the voiced source contour to the target's voiced mean/std (Hz), clip at 0; unvoiced stays 0.

    Degenerate cases the official code would turn into NaN are handled explicitly: with no voiced source or
    target frame the source is returned unchanged (logged), a flat source (std 0) is moved to the target mean.
    """
    f0 = np.array(src_f0_hz, dtype=np.float64, copy=True)
    voiced = f0 != 0
    trg_mean, trg_std = voiced_stats(trg_f0_hz)
    if not voiced.any() or not (np.asarray(trg_f0_hz) != 0).any():
        logger.warning("F0 re-targeting skipped: source or target has no voiced frame")
        return f0
    src = f0[voiced]
    src_std = src.std()
    normalized = (src - src.mean()) / src_std if src_std > 0 else np.zeros_like(src)
    f0[voiced] = normalized * trg_std + trg_mean
    f0[f0 < 0] = 0.0
    return f0


def vc_log_f0(src_f0_hz: np.ndarray, trg_f0_hz: np.ndarray) -> torch.Tensor:
    """The F0 the official VC hands to the synthesizer: ``to_log_f0(retarget_f0(src, trg))`` (float32)."""
    return to_log_f0(retarget_f0(src_f0_hz, trg_f0_hz))
