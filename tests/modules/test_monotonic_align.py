"""modules/monotonic_align.py: numba and torch MAS against an exhaustive search on small matrices."""

import itertools

import numpy as np
import pytest
import torch

from modules import monotonic_align
from modules.monotonic_align import gaussian_scores, maximum_path, maximum_path_numba, maximum_path_torch


def _best_path_exhaustive(value: np.ndarray, t_y: int, t_x: int) -> tuple[float, np.ndarray]:
    """Enumerate every monotonic surjective path (choose the Tx-1 frames where the token advances)."""
    best, best_path = -np.inf, None
    for steps in itertools.combinations(range(1, t_y), t_x - 1):
        tokens = np.zeros(t_y, dtype=np.int64)
        for s in steps:
            tokens[s:] += 1
        score = float(value[np.arange(t_y), tokens].sum())
        if score > best:
            best, best_path = score, tokens
    path = np.zeros((t_y, t_x))
    path[np.arange(t_y), best_path] = 1
    return best, path


@pytest.mark.parametrize("impl", ["numba", "torch"])
def test_matches_exhaustive_search(impl):
    rng = np.random.default_rng(0)
    fn = maximum_path_numba if impl == "numba" else maximum_path_torch
    for trial in range(25):
        batch, max_y, max_x = 3, 8, 5
        t_x = rng.integers(1, max_x + 1, size=batch)
        t_y = np.array([rng.integers(tx, max_y + 1) for tx in t_x])
        value = rng.normal(size=(batch, max_y, max_x)).astype(np.float32)
        mask = np.zeros_like(value)
        for b in range(batch):
            mask[b, : t_y[b], : t_x[b]] = 1
        path = fn(torch.from_numpy(value), torch.from_numpy(mask)).numpy()
        for b in range(batch):
            best, _ = _best_path_exhaustive(value[b], t_y[b], t_x[b])
            got = path[b, : t_y[b], : t_x[b]]
            assert np.all(got.sum(1) == 1), "every frame belongs to exactly one token"
            assert abs(float((got * value[b, : t_y[b], : t_x[b]]).sum()) - best) < 1e-4
            assert path[b].sum() == t_y[b], "nothing outside the valid region"


def test_numba_and_torch_agree_on_larger_batches():
    torch.manual_seed(0)
    value = torch.randn(4, 60, 23)
    mask = torch.zeros_like(value)
    for b, (ty, tx) in enumerate([(60, 23), (41, 17), (23, 23), (55, 1)]):
        mask[b, :ty, :tx] = 1
    a = maximum_path_numba(value, mask)
    b = maximum_path_torch(value, mask)
    assert torch.equal(a, b)
    assert torch.equal(maximum_path(value, mask), a)
    # Ty == Tx forces the diagonal.
    assert torch.equal(a[2, :23, :23], torch.eye(23))


def test_rejects_bad_shapes_and_too_few_frames():
    with pytest.raises(ValueError, match="shape"):
        maximum_path(torch.zeros(1, 4, 3), torch.ones(1, 4, 2))
    with pytest.raises(ValueError, match="Ty >= Tx"):
        maximum_path(torch.zeros(1, 3, 4), torch.ones(1, 3, 4))


def test_torch_fallback_used_without_numba(monkeypatch):
    monkeypatch.setattr(monotonic_align, "_HAVE_NUMBA", False)
    value = torch.randn(2, 9, 4)
    mask = torch.ones_like(value)
    assert torch.equal(monotonic_align.maximum_path(value, mask), maximum_path_torch(value, mask))


def test_gaussian_scores_equal_direct_log_density():
    torch.manual_seed(0)
    z = torch.randn(2, 3, 5)
    m = torch.randn(2, 3, 4)
    logs = torch.randn(2, 3, 4) * 0.3
    dist = torch.distributions.Normal(m.unsqueeze(2), torch.exp(logs).unsqueeze(2))  # (B, C, 1, Tx)
    direct = dist.log_prob(z.unsqueeze(-1)).sum(1)  # (B, Ty, Tx)
    torch.testing.assert_close(gaussian_scores(z, m, logs), direct, rtol=1e-5, atol=1e-5)
