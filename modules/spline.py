"""Monotonic piecewise rational-quadratic (RQ) spline transform (Durkan et al., 2019, "Neural Spline Flows").

Used by the ``ConvFlow`` coupling of the VITS stochastic duration predictor.  The spline maps
``[-tail_bound, tail_bound]`` onto itself through ``K`` bins whose widths, heights and inner knot
derivatives come from unconstrained network outputs; outside the interval the transform is the identity
("linear tails", derivative 1 at the boundary knots).

All functions work element-wise on ``inputs (...)`` with parameters ``(..., K)`` / ``(..., K - 1)``.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


def _bin_index(knots: torch.Tensor, values: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Index ``k`` of the bin ``[knots[k], knots[k+1])`` holding each value: ``(...)`` long.

    The last knot is nudged up by ``eps`` so that a value exactly on the upper bound falls in the last bin.
    """
    knots = torch.cat([knots[..., :-1], knots[..., -1:] + eps], dim=-1)
    return (values.unsqueeze(-1) >= knots).sum(dim=-1) - 1


def _knots(unnormalized: torch.Tensor, low: float, high: float, min_size: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Softmax bin sizes (each at least ``min_size`` of the range) -> (knot positions (..., K+1), sizes (..., K))."""
    num_bins = unnormalized.shape[-1]
    sizes = min_size + (1.0 - min_size * num_bins) * torch.softmax(unnormalized, dim=-1)
    cum = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0)
    cum = (high - low) * cum + low
    # Pin the end knots exactly to the interval ends (the cumulative sum may miss them by rounding).
    cum = torch.cat([torch.full_like(cum[..., :1], low), cum[..., 1:-1], torch.full_like(cum[..., :1], high)], -1)
    return cum, cum[..., 1:] - cum[..., :-1]


def rational_quadratic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    left: float = 0.0,
    right: float = 1.0,
    bottom: float = 0.0,
    top: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """RQ spline on ``[left, right] -> [bottom, top]``.

    Args:
        inputs: ``(N,)`` values inside the domain (the range when ``inverse``).
        unnormalized_widths, unnormalized_heights: ``(N, K)``.
        unnormalized_derivatives: ``(N, K + 1)`` (derivatives at all knots, before softplus).
        inverse: evaluate the inverse map.

    Returns:
        ``(outputs (N,), log|d outputs / d inputs| (N,))``.
    """
    if inputs.numel() > 0 and (inputs.min() < (bottom if inverse else left) or inputs.max() > (top if inverse else right)):
        raise ValueError("rational_quadratic_spline: input outside the spline interval")
    num_bins = unnormalized_widths.shape[-1]
    if min_bin_width * num_bins > 1.0 or min_bin_height * num_bins > 1.0:
        raise ValueError(f"rational_quadratic_spline: minimal bin size too large for {num_bins} bins")

    cumwidths, widths = _knots(unnormalized_widths, left, right, min_bin_width)
    cumheights, heights = _knots(unnormalized_heights, bottom, top, min_bin_height)
    derivatives = min_derivative + F.softplus(unnormalized_derivatives)

    bin_idx = _bin_index(cumheights if inverse else cumwidths, inputs).unsqueeze(-1)

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, bin_idx).squeeze(-1)

    x_k, w_k = pick(cumwidths), pick(widths)
    y_k, h_k = pick(cumheights), pick(heights)
    slope = pick(heights / widths)  # secant slope s_k of the bin
    d_k = pick(derivatives)
    d_k1 = pick(derivatives[..., 1:])
    curvature = d_k + d_k1 - 2.0 * slope

    if inverse:
        theta = _inverse_theta(inputs - y_k, h_k, slope, d_k, curvature)
        outputs = theta * w_k + x_k
    else:
        theta = (inputs - x_k) / w_k
        t1mt = theta * (1.0 - theta)
        outputs = y_k + h_k * (slope * theta.pow(2) + d_k * t1mt) / (slope + curvature * t1mt)
    logabsdet = _log_abs_derivative(theta, slope, d_k, d_k1, curvature)
    return outputs, (-logabsdet if inverse else logabsdet)


def _inverse_theta(dy: torch.Tensor, h_k: torch.Tensor, slope: torch.Tensor, d_k: torch.Tensor,
                   curvature: torch.Tensor) -> torch.Tensor:
    """Position ``theta`` in [0, 1] inside its bin ``(N,)`` of outputs ``dy = y - y_k`` above the bin's bottom: the
    root of a*theta^2 + b*theta + c = 0 taken in its numerically stable form."""
    a = dy * curvature + h_k * (slope - d_k)
    b = h_k * d_k - dy * curvature
    c = -slope * dy
    disc = b.pow(2) - 4.0 * a * c
    if not bool((disc >= 0).all()):
        raise RuntimeError("rational_quadratic_spline: negative discriminant in the inverse")
    return (2.0 * c) / (-b - torch.sqrt(disc))


def _log_abs_derivative(theta: torch.Tensor, slope: torch.Tensor, d_k: torch.Tensor, d_k1: torch.Tensor,
                        curvature: torch.Tensor) -> torch.Tensor:
    """log|dy/dx| ``(N,)`` of the forward map at bin position ``theta`` (bin slope, knot derivatives d_k, d_k+1)."""
    t1mt = theta * (1.0 - theta)
    denominator = slope + curvature * t1mt
    deriv_numerator = slope.pow(2) * (d_k1 * theta.pow(2) + 2.0 * slope * t1mt + d_k * (1.0 - theta).pow(2))
    return torch.log(deriv_numerator) - 2.0 * torch.log(denominator)


def unconstrained_rational_quadratic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """RQ spline on ``[-B, B]`` with identity (linear) tails outside.

    Args:
        inputs: ``(...)``.
        unnormalized_widths, unnormalized_heights: ``(..., K)``.
        unnormalized_derivatives: ``(..., K - 1)`` (inner knots only; the boundary derivatives are fixed so
            that ``min_derivative + softplus(.) == 1``, matching the identity tails).

    Returns:
        ``(outputs, logabsdet)`` of the shape of ``inputs`` (log-det 0 in the tails).
    """
    inside = (inputs >= -tail_bound) & (inputs <= tail_bound)
    boundary = math.log(math.expm1(1.0 - min_derivative))
    derivs = F.pad(unnormalized_derivatives, (1, 1), value=boundary)

    outputs = inputs.clone()
    logabsdet = torch.zeros_like(inputs)
    if bool(inside.any()):
        out_in, lad_in = rational_quadratic_spline(
            inputs[inside],
            unnormalized_widths[inside, :],
            unnormalized_heights[inside, :],
            derivs[inside, :],
            inverse=inverse,
            left=-tail_bound,
            right=tail_bound,
            bottom=-tail_bound,
            top=tail_bound,
            min_bin_width=min_bin_width,
            min_bin_height=min_bin_height,
            min_derivative=min_derivative,
        )
        outputs = outputs.masked_scatter(inside, out_in)
        logabsdet = logabsdet.masked_scatter(inside, lad_in)
    return outputs, logabsdet


def piecewise_rational_quadratic_transform(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tails: str | None = None,
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Dispatch: ``tails=None`` -> spline on ``[0, 1]``; ``tails="linear"`` -> unconstrained with identity tails."""
    kwargs = dict(min_bin_width=min_bin_width, min_bin_height=min_bin_height, min_derivative=min_derivative)
    if tails is None:
        return rational_quadratic_spline(
            inputs, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, inverse=inverse, **kwargs
        )
    if tails != "linear":
        raise ValueError(f"piecewise_rational_quadratic_transform: unsupported tails {tails!r} (use None or 'linear')")
    return unconstrained_rational_quadratic_spline(
        inputs,
        unnormalized_widths,
        unnormalized_heights,
        unnormalized_derivatives,
        inverse=inverse,
        tail_bound=tail_bound,
        **kwargs,
    )
