"""YAAPT's temporal (NCCF) pitch tracking as one numba loop: amfm_decompy's ``time_track`` without the per-frame
Python overhead.

``amfm_decompy.pYAAPT.time_track`` runs, for every 5 ms frame, ``crs_corr`` (normalised cross-correlation over
the frame's lag range) and ``cmp_rate`` (peak picking), each a handful of small numpy calls: about 70 us of
interpreter and dispatch time per frame, 45 % of a YAAPT call, while the arithmetic is a few microseconds.
:func:`time_track` here is a drop-in replacement (same signature, same return values) that does the same
steps in the same order, including two quirks of the original:

* the frames are overlapping views of one buffer and ``crs_corr`` subtracts each frame's mean *in place*,
  so frame k sees samples already shifted by the means of the frames before it;
* ``cmp_rate`` keeps more than ``nccf_maxcands`` candidates while peak picking and then keeps the best
  ``nccf_maxcands`` by merit (ties by position, as numpy's small-array sort does).

Sums are plain loops where numpy uses BLAS / pairwise summation, so correlations can differ in the last
bits (~1e-16 relative); the pitch candidates are discrete lags and the merits feed only comparisons, so the
final F0 equals amfm_decompy's: tests/processors/test_yaapt_nccf.py checks every real clip we ship.
:func:`use_fast_time_track` swaps it in for the duration of a ``pYAAPT.yaapt`` call.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Tuple

import numpy as np

try:  # numba is a listed dependency; without it amfm_decompy's own time_track runs
    import numba
except ImportError:  # pragma: no cover - exercised only on installs without numba
    numba = None

_kernel = None
_PATCH_LOCK = threading.Lock()


_replaced = None  # amfm_decompy's time_track while use_fast_time_track has it swapped out


def _original(*args):
    if _replaced is not None:
        return _replaced(*args)
    import amfm_decompy.pYAAPT as pYAAPT

    return pYAAPT.time_track(*args)


def available() -> bool:
    return numba is not None


def _build_kernel():
    @numba.njit(cache=True, nogil=True)
    def pick_peaks(phi, lag_min, lag_max, fs, maxcands, center, thresh1, thresh2, pitch_out, merit_out):
        # pragma: no cover - compiled
        n_frames, frame_length = phi.shape
        cand_pitch = np.zeros(frame_length + maxcands)
        cand_merit = np.zeros(frame_length + maxcands)
        for frame in range(n_frames):
            row = phi[frame]
            lo = lag_min[frame]
            hi = lag_max[frame]
            # local maxima above thresh1 between lo + center and hi - center
            n_peaks = 0
            best_lag = -1
            best_merit = -np.inf
            for lag in range(lo + center, hi - center + 1):
                value = row[lag]
                if value > row[lag - 1] and value > row[lag + 1] and value > thresh1:
                    cand_pitch[n_peaks] = lag  # lags for now
                    n_peaks += 1
                    if value > best_merit:  # the first maximum, like argmax
                        best_merit = value
                        best_lag = lag
            row_max = row[0]  # np.amax: NaN propagates
            for i in range(1, frame_length):
                if np.isnan(row[i]):
                    row_max = row[i]
                    break
                if row[i] > row_max:
                    row_max = row[i]
            count = 0
            if row_max > thresh2 and n_peaks > 0:
                cand_pitch[0] = fs / float(best_lag + 1)
                cand_merit[0] = best_merit
                count = 1
            else:
                for p in range(n_peaks):
                    lag = int(cand_pitch[p])
                    # the peak must be the argmax of its (2 * center + 1)-lag window (first NaN, else first max)
                    arg = 0
                    top = row[lag - center]
                    if not np.isnan(top):
                        for j in range(1, 2 * center + 1):
                            value = row[lag - center + j]
                            if np.isnan(value):
                                arg = j
                                break
                            if value > top:
                                top = value
                                arg = j
                    if arg == center:
                        cand_pitch[count] = fs / float(lag + 1)
                        cand_merit[count] = row[lag]
                        count += 1
            size = max(count, maxcands)
            for j in range(count, size):
                cand_pitch[j] = 0.0
                cand_merit[j] = 0.0
            # the best maxcands by merit, descending; equal merits keep their order
            order = np.arange(size)
            for i in range(1, size):
                j = i
                while j > 0 and cand_merit[order[j]] > cand_merit[order[j - 1]]:
                    order[j], order[j - 1] = order[j - 1], order[j]
                    j -= 1
            top_merit = cand_merit[order[0]]
            for j in range(maxcands):
                pitch_out[j, frame] = cand_pitch[order[j]]
                merit_out[j, frame] = cand_merit[order[j]] / top_merit if top_merit > 1.0 else cand_merit[order[j]]

    return pick_peaks


def _get_kernel():
    global _kernel
    if _kernel is None:
        _kernel = _build_kernel()
    return _kernel


def time_track(signal, spec_pitch, pitch_std, pitch, parameters) -> Tuple[np.ndarray, np.ndarray]:
    """Same inputs and outputs as ``amfm_decompy.pYAAPT.time_track`` (see the module docstring)."""
    tda_frame_length = int(parameters["tda_frame_length"] * signal.fs / 1000)
    tda_noverlap = tda_frame_length - pitch.frame_jump
    tda_nframes = int((len(signal.data) - tda_noverlap) / pitch.frame_jump)
    if tda_nframes < len(spec_pitch):
        spec_pitch = spec_pitch[:tda_nframes]
    elif tda_nframes > len(spec_pitch):
        tda_nframes = len(spec_pitch)
    merit_boost = parameters["merit_boost"]
    maxcands = int(parameters["nccf_maxcands"])
    freq_thresh = 5.0 * pitch_std
    low = np.maximum(spec_pitch - 2.0 * pitch_std, parameters["f0_min"])
    high = np.minimum(spec_pitch + 2.0 * pitch_std, parameters["f0_max"])
    half_width = int(np.fix(parameters["nccf_pwidth"] / 2.0))
    lag_min = np.array([int(np.fix(signal.new_fs / f)) for f in high], dtype=np.int64) - half_width
    lag_max = np.array([int(np.fix(signal.new_fs / f)) for f in low], dtype=np.int64) + half_width
    if tda_nframes > 0 and lag_min.min() - half_width - 1 < 0:
        # the peak window would reach negative lags, which numpy slicing wraps: leave that to the original
        return _original(signal, spec_pitch, pitch_std, pitch, parameters)

    data = np.zeros(signal.size)  # a copy: the frames are centred in place
    data[:] = signal.filtered
    time_pitch = np.zeros((maxcands, tda_nframes))
    time_merit = np.zeros((maxcands, tda_nframes))
    phi = np.zeros((tda_nframes, tda_frame_length))
    hop = int(pitch.frame_jump)
    itemsize = data.itemsize
    add_reduce, dot, sqrt = np.add.reduce, np.dot, np.sqrt
    for frame in range(tda_nframes):
        # crs_corr, operation for operation (np.mean is add.reduce / n): the same numbers, bit for bit
        start = frame * hop
        lo, hi = int(lag_min[frame]), int(lag_max[frame])
        n = tda_frame_length - hi
        if n <= 0:
            raise AssertionError("ERROR: Negative index in the cross correlation calculation of the pYAAPT time "
                                 "domain analysis. Please try to increase the value of the \"tda_frame_length\" "
                                 "parameter.")
        segment = data[start:start + tda_frame_length]
        segment -= add_reduce(segment) / tda_frame_length
        x_j = segment[:n]
        energy = dot(x_j, x_j)
        lagged = np.ndarray((hi - lo, n), dtype=data.dtype, buffer=data, offset=(start + lo) * itemsize,
                            strides=(itemsize, itemsize))
        phi[frame, lo:hi] = dot(lagged, x_j) / sqrt(add_reduce(lagged * lagged, axis=1) * energy + 0.0)
    _get_kernel()(phi, lag_min, lag_max, float(signal.new_fs), maxcands, half_width,
                  float(parameters["nccf_thresh1"]), float(parameters["nccf_thresh2"]), time_pitch, time_merit)
    diff = np.abs(time_pitch - spec_pitch)
    match = (1 - diff / freq_thresh) * (diff < freq_thresh)
    time_merit = ((1 + merit_boost) * time_merit) * match
    return time_pitch, time_merit


@contextlib.contextmanager
def use_fast_time_track(pyaapt_module) -> Iterator[None]:
    """Run ``pyaapt_module.yaapt`` with :func:`time_track` inside the block (one caller at a time)."""
    if not available():
        yield
        return
    global _replaced
    with _PATCH_LOCK:
        original = pyaapt_module.time_track
        pyaapt_module.time_track, _replaced = time_track, original
        try:
            yield
        finally:
            pyaapt_module.time_track, _replaced = original, None
