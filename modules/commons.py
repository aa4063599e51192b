"""Small tensor helpers shared by the VITS-family models (masks, segment slicing, alignment paths) and the
inference fast paths (tensors derived from weights, cached until the weights change).

Shapes follow the VITS convention: channel-first ``(B, C, T)`` tensors with ``(B, 1, T)`` masks.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


def conv_reach(module: torch.nn.Module) -> int:
    """Input steps on each side that one output of ``module`` can depend on through its stride-1 ``Conv1d``
    layers, read as one chain: exact for a sequential stack (a WaveNet, a ResBlock), an upper bound where
    branches run side by side."""
    return sum(c.dilation[0] * (c.kernel_size[0] - 1) // 2 for c in module.modules()
               if isinstance(c, torch.nn.Conv1d))


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a stride-1 convolution with an odd effective kernel."""
    return (kernel_size * dilation - dilation) // 2


def cached_derived(owner: Any, name: str, sources: Sequence[torch.Tensor], build: Callable[[], Any],
                   extra: Tuple = ()) -> Any:
    """``build()`` (run without autograd) cached as ``owner.<name>`` until a source tensor changes.

    A change is another storage, an in-place write (version counter; a state_dict load is one), dtype or
    device; ``extra`` adds anything else the result depends on (e.g. the dtype it is built for).
    """
    key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources) + tuple(extra)
    cached = getattr(owner, name, None)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = (key, build())
        setattr(owner, name, cached)
    return cached[1]


def sequence_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """Boolean mask ``(B, T)``: ``mask[b, t] = t < lengths[b]``; ``T = max_len`` or ``max(lengths)``.

    ``max(lengths)`` stays a tensor, so a graph traced for ONNX export keeps ``T`` a graph value instead of
    freezing the traced length."""
    if max_len is None:
        max_len = lengths.max()
    steps = torch.arange(max_len, dtype=lengths.dtype, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``x[b, :, starts[b]:starts[b] + size]`` for every item: ``(B, C, T) -> (B, C, size)``.

    Windows that run past the end of ``x`` raise (a silent short slice would break the batch).
    """
    if x.size(-1) < size:
        raise ValueError(f"slice_segments: segment size {size} exceeds the time axis ({x.size(-1)})")
    out = []
    for b in range(x.size(0)):
        start = int(starts[b])
        if start < 0 or start + size > x.size(-1):
            raise ValueError(f"slice_segments: window [{start}, {start + size}) outside 0..{x.size(-1)}")
        out.append(x[b, :, start:start + size])
    return torch.stack(out, dim=0)


def rand_slice_segments(
    x: torch.Tensor,
    lengths: Optional[torch.Tensor],
    size: int,
    uniform: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``size`` frames inside each item's valid length.

    Args:
        x: ``(B, C, T)``.
        lengths: ``(B,)`` valid lengths (``None`` = ``T`` for all items).
        size: window length in frames.
        uniform: optional ``(B,)`` draws in [0, 1) replacing ``torch.rand`` (replaying a recorded run).

    Returns:
        ``(segments (B, C, size), starts (B,) long)`` with ``start = floor(u * (length - size + 1))``,
        clipped at 0 (items shorter than ``size`` start at 0).
    """
    batch = x.size(0)
    if lengths is None:
        lengths = torch.full((batch,), x.size(-1), dtype=torch.long, device=x.device)
    if uniform is None:
        uniform = torch.rand(batch, device=x.device)
    max_start = lengths.to(x.device) - size + 1
    starts = (uniform.to(x.device) * max_start).to(torch.long).clamp(min=0)
    return slice_segments(x, starts, size), starts


def generate_path(durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard monotonic alignment from integer durations.

    Args:
        durations: ``(B, 1, Tx)`` frames per input token.
        mask: ``(B, 1, Ty, Tx)`` valid (frame, token) pairs.

    Returns:
        ``(B, 1, Ty, Tx)`` 0/1 path: frame ``y`` belongs to token ``x`` iff
        ``cum[x-1] <= y < cum[x]`` with ``cum`` the cumulative durations.
    """
    batch, _, t_y, t_x = mask.shape
    cum = torch.cumsum(durations, dim=-1).view(batch * t_x)
    upto = sequence_mask(cum, t_y).view(batch, t_x, t_y).to(mask.dtype)
    # Frames covered by token x but not by tokens < x.
    path = upto - F.pad(upto, (0, 0, 1, 0))[:, :-1]
    return path.unsqueeze(1).transpose(2, 3) * mask


def fused_add_tanh_sigmoid_multiply(a: torch.Tensor, b: torch.Tensor, n_channels: int) -> torch.Tensor:
    """WaveNet gate: ``tanh((a+b)[:, :n]) * sigmoid((a+b)[:, n:])``."""
    total = a + b
    return torch.tanh(total[:, :n_channels]) * torch.sigmoid(total[:, n_channels:])
