"""Steps of amfm_decompy's YAAPT without their per-frame Python overhead, with the same numbers bit for bit.

YAAPT's dynamic programming breaks exact ties between pitch candidates, so a 1e-16 change in a merit can move
the final F0 of a frame: a faster YAAPT is only acceptable if every intermediate equals the library's. Both
replacements keep each floating-point operation of amfm_decompy 1.0.11 (same numpy calls on same-shaped
operands, or operations whose batched form numpy computes identically) and only remove interpreter work:

* :func:`time_track` (temporal NCCF tracking, ~45 % of a call): ``crs_corr`` stays numpy, frame by frame,
  because its frames are overlapping views of one buffer centred *in place* (frame k sees the means of the
  frames before it subtracted) and its dot products are BLAS calls; ``cmp_rate`` (peak picking: comparisons,
  ``fs / (lag + 1)`` and one division) runs for all frames in one numba loop.
* :func:`spec_track` (spectral harmonics tracking, ~30 %): windowing, centring, the 8192-point FFTs and the
  subharmonic sums run for blocks of voiced frames at once (row-wise reductions and batched pocketfft give
  the per-frame results exactly); ``peaks`` (the SHC peak picker, ~25 % of a call when run per frame) keeps
  its row maximum, normalisation and mean in batched numpy and runs its comparisons in one numba loop
  (:func:`shc_peaks`); the post-processing is the library's own steps.
* :func:`nlfer` (frame energies, voicing): the library's arithmetic with its FFTs in blocks of frames, for
  memory (its all-frames spectrogram is 35 MB for 5 s), not speed.

:func:`use_fast_yaapt` swaps them in for the duration of a ``pYAAPT.yaapt`` call; tests/processors/
test_yaapt_fast.py checks candidates, merits and final F0 for equality on every clip we ship.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Iterator, Optional, Tuple

import numpy as np

from utils.numba import available, cached_njit

_PATCH_LOCK = threading.Lock()


_replaced: dict = {}  # amfm_decompy's functions while use_fast_yaapt has them swapped out


def _original(name: str):
    if name in _replaced:
        return _replaced[name]
    import amfm_decompy.pYAAPT as pYAAPT

    return getattr(pYAAPT, name)


# Long because it holds the kernel below; built on first use so that importing this module compiles nothing.
@functools.lru_cache(maxsize=None)
def _peak_kernel():
    # One numba kernel is one compiled loop over the frames (the library's peak picking step for step): kept whole.
    @cached_njit()
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


if available():
    # Module level, not a closure of _path_kernel(): numba keys its on-disk cache on the pickled closure
    # variables, and a captured dispatcher pickles differently in every process (the cache never hit).
    @cached_njit(inline="always")
    def _last_argmin(values):  # pragma: no cover - compiled
        """``len - 1 - np.argmin(values[::-1])``: the last minimum, or the last NaN if there is one."""
        best = -1
        best_value = 0.0
        for b in range(len(values) - 1, -1, -1):
            value = values[b]
            if np.isnan(value):
                return b
            if best < 0 or value < best_value:
                best = b
                best_value = value
        return best


@functools.lru_cache(maxsize=None)
def _path_kernel():
    @cached_njit()
    def best_path(local, trans, n_lin, n_col):  # pragma: no cover - compiled
        pred = np.zeros((n_lin, n_col), dtype=np.int64)
        path = np.ones(n_col, dtype=np.int64)
        p_small = np.zeros(n_col, dtype=np.int64)
        cost = np.empty(n_lin)
        step = np.empty(n_lin)
        for i in range(1, n_col):
            for a in range(n_lin):
                for b in range(n_lin):
                    step[b] = local[b, 0] + trans[b, a, i]
                best = _last_argmin(step)
                pred[a, i] = best
                cost[a] = local[best, 0] + trans[best, a, i] + local[a, i]
            # the original's running cost is a view of local[:, 0]: it is overwritten in place
            for a in range(n_lin):
                local[a, 0] = cost[a]
            p_small[i] = _last_argmin(cost)
        path[n_col - 1] = p_small[n_col - 1]
        for i in range(n_col - 2, -1, -1):
            path[i] = pred[path[i + 1], i + 1]
        return path

    return best_path


def path1(local, trans, n_lin, n_col) -> np.ndarray:
    """``amfm_decompy.pYAAPT.path1`` (the DP of both trackers) as one numba loop: same sums, same tie rules."""
    if (not isinstance(local, np.ndarray) or local.dtype != np.float64 or trans.dtype != np.float64
            or local.shape != (n_lin, n_col) or trans.shape != (n_lin, n_lin, n_col) or n_col < 1):
        return _original("path1")(local, trans, n_lin, n_col)
    return _path_kernel()(local, np.ascontiguousarray(trans), int(n_lin), int(n_col)).astype(int)


def _lags(fs, frequencies: np.ndarray) -> np.ndarray:
    """``[int(np.fix(fs / f)) for f in frequencies]`` in one division: the same quotients, truncated the same
    way (the per-element form stays for values int() would reject)."""
    quotients = np.fix(fs / frequencies)
    if not np.isfinite(quotients).all():
        return np.array([int(np.fix(fs / f)) for f in frequencies], dtype=np.int64)
    return quotients.astype(np.int64)


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
    lag_min = _lags(signal.new_fs, high) - half_width
    lag_max = _lags(signal.new_fs, low) + half_width
    if tda_nframes > 0 and lag_min.min() - half_width - 1 < 0:
        # the peak window would reach negative lags, which numpy slicing wraps: leave that to the original
        return _original("time_track")(signal, spec_pitch, pitch_std, pitch, parameters)

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
    _peak_kernel()(phi, lag_min, lag_max, float(signal.new_fs), maxcands, half_width,
                  float(parameters["nccf_thresh1"]), float(parameters["nccf_thresh2"]), time_pitch, time_merit)
    diff = np.abs(time_pitch - spec_pitch)
    match = (1 - diff / freq_thresh) * (diff < freq_thresh)
    time_merit = ((1 + merit_boost) * time_merit) * match
    return time_pitch, time_merit


# frames per block of the batched spectral track (a block's FFT input and subharmonic products stay ~30 MB)
SPEC_BLOCK = 48


def spec_track(signal, pitch, parameters) -> Tuple[np.ndarray, float]:
    """Same inputs and outputs as ``amfm_decompy.pYAAPT.spec_track`` (see the module docstring)."""
    cand_pitch, cand_merit = _spectral_candidates(signal, pitch, parameters)
    return _spectral_track(cand_pitch, cand_merit, pitch, parameters)


def _spectral_candidates(signal, pitch, parameters) -> Tuple[np.ndarray, np.ndarray]:
    """Pitch candidates and merits ``(shc_maxpeaks, nframes)`` of the voiced frames from the subharmonic-to-
    harmonic sums of their spectra, computed in blocks of ``SPEC_BLOCK`` frames (unvoiced frames: 0 / 1)."""
    from amfm_decompy.pYAAPT import peaks
    from scipy.signal.windows import kaiser

    nframe_size = pitch.frame_size * 2
    maxpeaks = parameters["shc_maxpeaks"]
    delta = signal.new_fs / pitch.nfft
    window_length = int(np.fix(parameters["shc_window"] / delta))
    half_window_length = int(np.fix(float(window_length) / 2))
    if not window_length % 2:
        window_length += 1
    max_shc = int(np.fix((parameters["f0_max"] + parameters["shc_pwidth"] * 2) / delta))
    min_shc = int(np.ceil(parameters["f0_min"] / delta))
    num_harmonics = parameters["shc_numharms"]

    cand_pitch = np.zeros((maxpeaks, pitch.nframes))
    cand_merit = np.ones((maxpeaks, pitch.nframes))
    data = np.append(signal.filtered,
                     np.zeros((1, nframe_size + ((pitch.nframes - 1) * pitch.frame_jump - signal.size))))
    window = kaiser(nframe_size, 0.5)
    shc = np.zeros(max_shc)
    rows = max_shc - min_shc + 1
    # magnitude index read by harmonic h (1-based) at SHC row r, window column w
    gather = [min_shc * h + np.arange(rows)[:, None] * h + np.arange(window_length)[None, :]
              for h in range(1, num_harmonics + 2)]
    shc_lags = _shc_lag_range(delta, max_shc, parameters)
    voiced = np.where(pitch.vuv)[0]
    for first in range(0, len(voiced), SPEC_BLOCK):
        frames = voiced[first:first + SPEC_BLOCK]
        slices = data[frames[:, None] * pitch.frame_jump + np.arange(nframe_size)[None, :]] * window
        slices -= (np.add.reduce(slices, axis=1) / nframe_size)[:, None]  # np.mean, row by row
        magnitude = np.zeros((len(frames), int(half_window_length + pitch.nfft / 2 + 1)))
        magnitude[:, half_window_length:] = np.abs(np.fft.rfft(slices, pitch.nfft))
        product = magnitude[:, gather[0]]
        for index in gather[1:]:
            product *= magnitude[:, index]
        sums = np.add.reduce(product, axis=2)
        if shc_lags is not None and np.isfinite(sums).all():
            shc_peaks(sums, min_shc, max_shc, shc_lags, delta, maxpeaks, parameters, frames, cand_pitch, cand_merit)
            continue
        for row, frame in enumerate(frames.tolist()):
            shc[min_shc - 1:max_shc] = sums[row]
            cand_pitch[:, frame], cand_merit[:, frame] = peaks(shc, delta, maxpeaks, parameters)
    return cand_pitch, cand_merit


def _spectral_track(cand_pitch: np.ndarray, cand_merit: np.ndarray, pitch, parameters) -> Tuple[np.ndarray, float]:
    """amfm_decompy's own post-processing of the candidates, step for step: the smoothed spectral pitch track
    ``(nframes,)`` and its standard deviation (``cand_pitch``'s first row is updated in place, as there)."""
    from amfm_decompy.pYAAPT import dynamic5
    from scipy.interpolate import pchip
    from scipy.signal import lfilter, medfilt

    spec_pitch = cand_pitch[0, :]
    voiced_cand_pitch = cand_pitch[:, cand_pitch[0, :] > 0]
    voiced_cand_merit = cand_merit[:, cand_pitch[0, :] > 0]
    num_voiced_cand = len(voiced_cand_pitch[0, :])
    avg_voiced = np.mean(voiced_cand_pitch[0, :])
    std_voiced = np.std(voiced_cand_pitch[0, :])
    delta1 = abs((voiced_cand_pitch - 0.8 * avg_voiced)) * (3 - voiced_cand_merit)
    index = delta1.argmin(0)
    voiced_peak_minmrt = voiced_cand_pitch[index, range(num_voiced_cand)]
    voiced_merit_minmrt = voiced_cand_merit[index, range(num_voiced_cand)]
    voiced_peak_minmrt = medfilt(voiced_peak_minmrt, max(1, parameters["median_value"] - 2))
    voiced_cand_pitch[index, range(num_voiced_cand)] = voiced_peak_minmrt
    voiced_cand_merit[index, range(num_voiced_cand)] = voiced_merit_minmrt
    weight_trans = parameters["dp5_k1"] * std_voiced / avg_voiced
    if num_voiced_cand > 2:
        voiced_pitch = dynamic5(voiced_cand_pitch, voiced_cand_merit, weight_trans, parameters["f0_min"])
        voiced_pitch = medfilt(voiced_pitch, max(1, parameters["median_value"] - 2))
    elif num_voiced_cand > 0:
        voiced_pitch = np.ones(num_voiced_cand) * 150.0
    else:
        voiced_pitch = np.array([150.0])
        cand_pitch[0, 0] = 0
    pitch_avg = np.mean(voiced_pitch)
    pitch_std = np.maximum(np.std(voiced_pitch), pitch_avg * parameters["spec_pitch_min_std"])
    spec_pitch[cand_pitch[0, :] > 0] = voiced_pitch[:]
    if spec_pitch[0] < pitch_avg / 2:
        spec_pitch[0] = pitch_avg
    if spec_pitch[-1] < pitch_avg / 2:
        spec_pitch[-1] = pitch_avg
    spec_voiced = np.array(np.nonzero(spec_pitch)[0])
    spec_pitch = pchip(spec_voiced, spec_pitch[spec_voiced])(range(pitch.nframes))
    spec_pitch = lfilter(np.ones(3) / 3, 1.0, spec_pitch)
    spec_pitch[0] = spec_pitch[2]
    spec_pitch[1] = spec_pitch[3]
    return spec_pitch, pitch_std


def _shc_lag_range(delta: float, shc_length: int, parameters) -> Optional[Tuple[int, int, int]]:
    """``peaks``'s (min_lag, max_lag, center) as the library computes them, or None where it would adjust them
    (and print that it did): those calls stay with the library."""
    width = int(np.fix(parameters["shc_pwidth"] / delta))
    if not float(width) % 2:
        width = width + 1
    center = int(np.ceil(width / 2))
    min_lag = int(np.fix(parameters["f0_min"] / delta - center))
    max_lag = int(np.fix(parameters["f0_max"] / delta + center))
    if min_lag < 1 or max_lag > shc_length - width:
        return None
    return min_lag, max_lag, center


def shc_peaks(sums, min_shc, max_shc, lags, delta, maxpeaks, parameters, frames, cand_pitch, cand_merit) -> None:
    """``amfm_decompy.pYAAPT.peaks`` for a block of frames: row r of ``sums`` (B, max_shc - min_shc + 1) is the
    subharmonic summation of frame ``frames[r]``; its candidates go to column ``frames[r]`` of ``cand_pitch`` and
    ``cand_merit`` (maxpeaks, n_frames).

    The steps whose rounding depends on how they are computed stay numpy, batched so that each row gets the
    library's numbers: the division by the row maximum (elementwise) and the mean of the lag range (``np.mean``
    is a pairwise ``add.reduce``, which numpy also applies to each row of an axis-1 reduction). Peak picking,
    thresholds and the ordering (comparisons and one product) run compiled."""
    min_lag, max_lag, center = lags
    shc = np.zeros((len(sums), max_shc))
    shc[:, min_shc - 1:max_shc] = sums
    lag_range = shc[:, min_lag:max_lag + 1]
    row_max = lag_range.max(axis=1)  # no NaN here (checked by the caller), so builtin max's answer
    np.divide(shc, row_max[:, None], out=shc, where=(row_max > 1e-14)[:, None])  # peaks' epsilon
    average = np.add.reduce(lag_range, axis=1) / (max_lag + 1 - min_lag)
    _shc_peak_kernel()(shc, average, frames, min_lag, max_lag, center, float(delta), int(maxpeaks),
                       1 / parameters["shc_thresh1"], float(parameters["shc_thresh1"]),
                       float(parameters["shc_thresh2"]), cand_pitch, cand_merit)


@functools.lru_cache(maxsize=None)
def _shc_peak_kernel():
    @cached_njit()
    def pick(data, average, frames, min_lag, max_lag, center, delta, maxpeaks, inv_thresh1, thresh1, thresh2,
             pitch_out, merit_out):  # pragma: no cover - compiled
        pitch = np.zeros(maxpeaks)
        merit = np.zeros(maxpeaks)
        order = np.zeros(maxpeaks, dtype=np.int64)
        for r in range(data.shape[0]):
            row = data[r]
            avg = average[r]
            frame = frames[r]
            for j in range(maxpeaks):  # the library's "no candidates" answer
                pitch_out[j, frame] = 0.0
                merit_out[j, frame] = 1.0
            if avg > inv_thresh1:
                continue
            floor = thresh2 * avg
            numpeaks = 0
            top = 0.0  # builtin max over merit, whose unused slots are 0
            for n in range(min_lag + center + 1, max_lag - center + 1):
                value = row[n]
                if not (value > row[n - 1] and value > row[n + 1] and value > floor):
                    continue
                arg = 0  # np.argmax of the (2 * center + 1)-lag window: first maximum (no NaN in these rows)
                best = row[n - center]
                for j in range(1, 2 * center + 1):
                    if row[n - center + j] > best:
                        best = row[n - center + j]
                        arg = j
                if arg != center:
                    continue
                if numpeaks < maxpeaks:
                    pitch[numpeaks] = float(n) * delta
                    merit[numpeaks] = value
                if value > top:
                    top = value
                numpeaks += 1
            # maxpeaks or more peaks, none, or too weak a best peak: the library answers "no candidates"
            # (max / 0 is inf or NaN there, never below the threshold)
            if numpeaks == 0 or numpeaks >= maxpeaks or (avg != 0 and top / avg < thresh1):
                continue
            for j in range(numpeaks, maxpeaks):
                pitch[j] = 0.0
                merit[j] = 0.0
            # argsort of -merit over maxpeaks slots: descending, equal merits in their order
            for i in range(maxpeaks):
                order[i] = i
            for i in range(1, maxpeaks):
                j = i
                while j > 0 and merit[order[j]] > merit[order[j - 1]]:
                    order[j], order[j - 1] = order[j - 1], order[j]
                    j -= 1
            for j in range(maxpeaks):
                source = order[j] if j < numpeaks else order[0]
                pitch_out[j, frame] = pitch[source]
                merit_out[j, frame] = merit[source]

    return pick


NLFER_BLOCK = 64  # frames per batched FFT in nlfer


def nlfer(signal, pitch, parameters) -> None:
    """``amfm_decompy.pYAAPT.nlfer`` (frame energy in the F0 band, voicing decision) with its 8192-point FFTs
    taken for blocks of frames instead of all frames at once: the same numbers (each row's FFT and its band
    sum do not depend on the other rows), but a 5 s clip no longer allocates a 35 MB complex spectrogram
    whose pages the process then keeps."""
    from amfm_decompy.pYAAPT import stride_matrix
    from scipy.signal.windows import hann

    n_f0_min = np.around((parameters["f0_min"] * 2 / float(signal.new_fs)) * pitch.nfft)
    n_f0_max = np.around((parameters["f0_max"] / float(signal.new_fs)) * pitch.nfft)
    window = hann(pitch.frame_size + 2)[1:-1]
    data = np.zeros((signal.size))
    data[:] = signal.filtered
    half = int(np.fix(float(pitch.frame_size) / 2))
    samples = np.arange(half, signal.size - half, pitch.frame_jump)
    data_matrix = np.empty((len(samples), pitch.frame_size))
    data_matrix[:, :] = stride_matrix(data, len(samples), pitch.frame_size, pitch.frame_jump)
    data_matrix *= window
    frame_energy = np.empty(len(samples))
    for first in range(0, len(samples), NLFER_BLOCK):
        spectrum = np.fft.rfft(data_matrix[first:first + NLFER_BLOCK], pitch.nfft)
        frame_energy[first:first + NLFER_BLOCK] = np.abs(spectrum[:, int(n_f0_min - 1):int(n_f0_max)]).sum(axis=1)
    pitch.set_energy(frame_energy, parameters["nlfer_thresh1"])
    pitch.set_frames_pos(samples)


FAST_STEPS = {"time_track": time_track, "spec_track": spec_track, "path1": path1, "nlfer": nlfer}


@contextlib.contextmanager
def use_fast_yaapt(pyaapt_module) -> Iterator[None]:
    """Run ``pyaapt_module.yaapt`` with :data:`FAST_STEPS` swapped in inside the block (one caller at a time)."""
    if not available():
        yield
        return
    with _PATCH_LOCK:
        originals = {name: getattr(pyaapt_module, name) for name in FAST_STEPS}
        _replaced.update(originals)
        for name, fast in FAST_STEPS.items():
            setattr(pyaapt_module, name, fast)
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(pyaapt_module, name, original)
            _replaced.clear()
