"""Monotonic alignment search (MAS, Glow-TTS/VITS) without any build step.

Given a score matrix ``value[y, x]`` (frame ``y``, token ``x``), find the monotonic, surjective path that starts
at (0, 0), ends at (Ty-1, Tx-1) and at each frame either stays on the same token or moves to the next one,
maximising the summed score.  Two implementations with identical results:

* :func:`maximum_path_numba` — a numba ``njit`` kernel (compiled lazily on first use, cached in memory) that
  reproduces the reference Cython arithmetic exactly: float32 accumulation, ``-1e9`` for unreachable cells,
  and on ties the backtrack stays on the current token.
* :func:`maximum_path_torch` — the same dynamic programme vectorised over batch and tokens with torch ops
  (one step per frame); used when numba is unavailable and for tensors that live on an accelerator.

:func:`maximum_path` picks one of them; :func:`gaussian_scores` builds the VITS score matrix and
:func:`search_alignment` runs the whole step (scores -> path) as the VITS-family models do in training;
:func:`align_to_mel` is the Glow-TTS-style aligner of models trained on log-mels without given durations.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from utils.numba import available, numba  # MAS keeps working without numba (torch path)

_HAVE_NUMBA = available()

_NEG = -1e9


def _check_inputs(neg_cent: torch.Tensor, mask: torch.Tensor) -> None:
    if neg_cent.dim() != 3 or mask.shape != neg_cent.shape:
        raise ValueError(
            f"maximum_path: expected neg_cent and mask of equal shape (B, Ty, Tx), got "
            f"{tuple(neg_cent.shape)} and {tuple(mask.shape)}"
        )


def _lengths(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid (Ty, Tx) per item from a rectangular mask ``(B, Ty, Tx)``."""
    t_y = mask.sum(1)[:, 0].long()
    t_x = mask.sum(2)[:, 0].long()
    if bool((t_x > t_y).any()):
        raise ValueError("maximum_path: every item needs at least as many frames as tokens (Ty >= Tx)")
    return t_y, t_x


if _HAVE_NUMBA:

    @numba.njit(cache=False, nogil=True)
    def _mas_batch(paths, values, t_ys, t_xs):  # pragma: no cover - compiled code is not traced by coverage
        neg = np.float32(_NEG)
        for b in range(values.shape[0]):
            value = values[b]
            t_y = t_ys[b]
            t_x = t_xs[b]
            for y in range(t_y):
                for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
                    v_cur = neg if x == y else value[y - 1, x]
                    if x == 0:
                        v_prev = np.float32(0.0) if y == 0 else neg
                    else:
                        v_prev = value[y - 1, x - 1]
                    value[y, x] = value[y, x] + max(v_prev, v_cur)
            index = t_x - 1
            for y in range(t_y - 1, -1, -1):
                paths[b, y, index] = 1
                if index != 0 and (index == y or value[y - 1, index] < value[y - 1, index - 1]):
                    index -= 1


def maximum_path_numba(neg_cent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAS with the numba kernel. ``neg_cent``, ``mask``: ``(B, Ty, Tx)`` -> 0/1 path ``(B, Ty, Tx)``."""
    if not _HAVE_NUMBA:
        raise RuntimeError("maximum_path_numba: numba is not installed (use maximum_path_torch)")
    _check_inputs(neg_cent, mask)
    t_y, t_x = _lengths(mask)
    values = neg_cent.detach().cpu().numpy().astype(np.float32)  # a copy: the kernel accumulates in place
    paths = np.zeros(values.shape, dtype=np.int32)
    _mas_batch(paths, values, t_y.cpu().numpy().astype(np.int64), t_x.cpu().numpy().astype(np.int64))
    return torch.from_numpy(paths).to(device=neg_cent.device, dtype=neg_cent.dtype)


def maximum_path_torch(neg_cent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAS with torch ops (same arithmetic as the numba kernel). Shapes as :func:`maximum_path_numba`."""
    _check_inputs(neg_cent, mask)
    t_y, t_x = _lengths(mask)
    batch, max_y, max_x = neg_cent.shape
    device = neg_cent.device
    value = neg_cent.detach().to(torch.float32).clone()
    x_idx = torch.arange(max_x, device=device).unsqueeze(0)  # (1, Tx)
    t_y_d, t_x_d = t_y.to(device).unsqueeze(1), t_x.to(device).unsqueeze(1)
    neg = torch.tensor(_NEG, dtype=torch.float32, device=device)
    for y in range(max_y):
        # Cells reachable at frame y and still able to reach the end: max(0, Tx+y-Ty) <= x <= min(Tx-1, y).
        active = (x_idx >= (t_x_d + y - t_y_d).clamp(min=0)) & (x_idx <= torch.minimum(t_x_d - 1, torch.full_like(t_x_d, y)))
        active = active & (y < t_y_d)
        if y == 0:
            prev_stay = torch.full((batch, max_x), _NEG, dtype=torch.float32, device=device)
            prev_move = torch.where(x_idx == 0, torch.zeros((), device=device), neg).expand(batch, max_x)
        else:
            prev_row = value[:, y - 1]
            prev_stay = torch.where(x_idx == y, neg, prev_row)
            prev_move = torch.cat([neg.expand(batch, 1), prev_row[:, :-1]], dim=1)
        best = torch.maximum(prev_move, prev_stay)
        value[:, y] = torch.where(active, value[:, y] + best, value[:, y])

    path = torch.zeros(batch, max_y, max_x, dtype=neg_cent.dtype, device=device)
    rows = torch.arange(batch, device=device)
    index = (t_x - 1).to(device)
    for y in range(max_y - 1, -1, -1):
        valid = y < t_y.to(device)
        path[rows[valid], y, index[valid]] = 1
        if y == 0:
            break
        here = value[rows, y - 1, index]
        left = value[rows, y - 1, (index - 1).clamp(min=0)]
        step = valid & (index != 0) & ((index == y) | (here < left))
        index = index - step.long()
    return path


def maximum_path(neg_cent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Monotonic alignment search.

    Args:
        neg_cent: ``(B, Ty, Tx)`` scores (log-likelihood of frame ``y`` under token ``x``).
        mask: ``(B, Ty, Tx)`` 0/1 valid (frame, token) pairs (outer product of the two length masks).

    Returns:
        ``(B, Ty, Tx)`` 0/1 path in the dtype/device of ``neg_cent``; zero outside the valid region.
    """
    if _HAVE_NUMBA and neg_cent.device.type == "cpu":
        return maximum_path_numba(neg_cent, mask)
    return maximum_path_torch(neg_cent, mask)


def gaussian_scores(z_p: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of every frame under every token's diagonal Gaussian, summed over channels.

    Args:
        z_p: ``(B, C, Ty)`` latent frames; ``m_p``, ``logs_p``: ``(B, C, Tx)`` token means / log-stds.

    Returns:
        ``(B, Ty, Tx)``, computed as four matrix terms (no ``(B, C, Ty, Tx)`` intermediate).
    """
    inv_var = torch.exp(-2.0 * logs_p)
    const = torch.sum(-0.5 * math.log(2 * math.pi) - logs_p, [1], keepdim=True)
    quad_z = torch.matmul(-0.5 * (z_p**2).transpose(1, 2), inv_var)
    cross = torch.matmul(z_p.transpose(1, 2), m_p * inv_var)
    quad_m = torch.sum(-0.5 * (m_p**2) * inv_var, [1], keepdim=True)
    return const + quad_z + cross + quad_m


@torch.no_grad()
def search_alignment(
    z_p: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, x_mask: torch.Tensor, y_mask: torch.Tensor
) -> torch.Tensor:
    """MAS between frames ``z_p (B, C, Ty)`` and the token prior ``(B, C, Tx)``; masks ``(B, 1, T)``.

    Returns the 0/1 alignment ``(B, 1, Ty, Tx)`` (no gradient).
    """
    scores = gaussian_scores(z_p, m_p, logs_p)
    mask = x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)  # (B, 1, Ty, Tx)
    return maximum_path(scores, mask.squeeze(1)).unsqueeze(1)


def align_to_mel(mel: torch.Tensor, mu: torch.Tensor, x_mask: torch.Tensor,
                 y_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``mel (B, M, T)`` under a unit-variance Gaussian per token with mean ``mu (B, M, N)``: the most likely
    monotonic path ``(B, T, N)`` (no gradient; ``path.sum(1)`` are the durations) and the loss that trains ``mu``
    (negative log-likelihood of the frames along the path up to a constant, mean over frames and channels).
    Masks ``(B, 1, N)`` / ``(B, 1, T)``."""
    path = search_alignment(mel, mu.detach(), torch.zeros_like(mu), x_mask, y_mask).squeeze(1)
    aligned = torch.bmm(path, mu.transpose(1, 2)).transpose(1, 2)  # (B, M, T)
    return path, 0.5 * (((mel - aligned) ** 2) * y_mask).sum() / (y_mask.sum() * mel.size(1))
