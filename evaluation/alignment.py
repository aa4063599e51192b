"""Frame alignment between a generated and a reference utterance.

* ``trim``: frame k of one with frame k of the other, up to the shorter length.  Right for resynthesis,
  vocoding and VC, where the timing is the reference's.
* ``dtw``: dynamic time warping on *spectral* features (mel-cepstra c1..cM for F0 and MCD, log-mel frames
  for log-mel L1), Euclidean local cost, steps (1,1), (1,0), (0,1) with equal weights (librosa's numba DTW).
  Right for TTS, where durations differ.  F0 is never aligned on its own values: DTW on the measured
  quantity would pick the pairing that flatters the score.

Every function returns the path as an ``(L, 2)`` int array of (generated frame, reference frame) pairs.
"""

from __future__ import annotations

import numpy as np

ALIGNMENTS = ("dtw", "trim")


def trim_path(n_generated: int, n_reference: int) -> np.ndarray:
    """Diagonal pairs ``(k, k)`` for k < min(n_generated, n_reference)."""
    length = min(n_generated, n_reference)
    index = np.arange(length)
    return np.stack([index, index], axis=1)


def dtw_path(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """DTW path between feature sequences ``(N, D)`` and ``(M, D)`` (Euclidean cost), start to end."""
    import librosa  # lazy: heavy import

    if generated.ndim != 2 or reference.ndim != 2 or generated.shape[1] != reference.shape[1]:
        raise ValueError(f"dtw_path needs (N, D) and (M, D) features, got {generated.shape} and {reference.shape}")
    if len(generated) == 0 or len(reference) == 0:
        raise ValueError("dtw_path: cannot align an empty feature sequence")
    g = generated.astype(np.float64)
    r = reference.astype(np.float64)
    # squared distances via the expansion |g|² + |r|² - 2 g·r (an (N, M) matrix, no (N, M, D) temporary)
    sq = (g**2).sum(1)[:, None] + (r**2).sum(1)[None, :] - 2.0 * g @ r.T
    cost = np.sqrt(np.maximum(sq, 0.0))
    _, path = librosa.sequence.dtw(C=cost, backtrack=True)
    return np.ascontiguousarray(path[::-1])  # librosa returns end -> start


def align(generated: np.ndarray, reference: np.ndarray, method: str) -> np.ndarray:
    """Path between two feature sequences by ``method`` (``dtw`` or ``trim``)."""
    if method == "dtw":
        return dtw_path(generated, reference)
    if method == "trim":
        return trim_path(len(generated), len(reference))
    raise ValueError(f"unknown alignment {method!r}; choose one of {', '.join(ALIGNMENTS)}")
