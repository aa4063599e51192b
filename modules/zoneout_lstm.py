"""LSTM over padded batches, with optional zoneout (Krueger et al. 2017; Tacotron 2 encoder, WaveGrad 2).

:class:`ZoneoutLSTM` is an ``nn.LSTM`` (batch first, same parameter names, so checkpoints of plain LSTMs load)
whose ``forward(x, lengths)`` takes zero-padded ``(B, T, C)`` input with per-item lengths, in any order
(``enforce_sorted=False``), and returns ``(B, T, D*H)`` with zeros on padding.

Zoneout keeps each hidden/cell unit at its previous value with probability ``zoneout``: a random mask while
training, the expectation ``p * old + (1 - p) * new`` in eval mode. With ``zoneout = 0`` the fused cuDNN/ATen
LSTM runs (identical to ``nn.LSTM`` on a packed sequence); otherwise a per-step loop with the same weights.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each item of ``x (B, T, C)`` within its first ``lengths[b]`` steps (padding stays in place)."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    lengths = lengths.to(x.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class ZoneoutLSTM(nn.LSTM):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = True,
                 zoneout: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        if not 0.0 <= zoneout < 1.0:
            raise ValueError(f"zoneout must lie in [0, 1), got {zoneout}")
        self.zoneout = zoneout

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        """``x (B, T, C)``, ``lengths (B,)`` (None = all T) -> ``(B, T, D*H)``, zero past each length."""
        if lengths is None:
            lengths = torch.full((x.size(0),), x.size(1), dtype=torch.long)
        if self.zoneout > 0.0:
            return self._zoneout_forward(x, lengths.to(x.device))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = super().forward(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return out

    def _zoneout_forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = (torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        layer_input = x
        for layer in range(self.num_layers):
            outputs: List[torch.Tensor] = []
            for suffix in ([""] + (["_reverse"] if self.bidirectional else [])):
                seq = reverse_padded(layer_input, lengths) if suffix else layer_input
                out = self._direction(seq, layer, suffix) * valid
                outputs.append(reverse_padded(out, lengths) if suffix else out)
            layer_input = torch.cat(outputs, dim=-1)
        return layer_input * valid

    def _direction(self, seq: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        w_ih = getattr(self, f"weight_ih_l{layer}{suffix}")
        w_hh = getattr(self, f"weight_hh_l{layer}{suffix}")
        bias = getattr(self, f"bias_ih_l{layer}{suffix}") + getattr(self, f"bias_hh_l{layer}{suffix}")
        batch, hidden = seq.size(0), self.hidden_size
        h = seq.new_zeros(batch, hidden)
        c = seq.new_zeros(batch, hidden)
        projected = seq @ w_ih.t() + bias  # input part of every step at once
        outs = []
        for t in range(seq.size(1)):
            gates = projected[:, t] + h @ w_hh.t()
            i, f, g, o = gates.chunk(4, dim=-1)  # ATen gate order
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            h, c = self._zone(h, h_new), self._zone(c, c_new)
            outs.append(h)
        return torch.stack(outs, dim=1)

    def _zone(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        p = self.zoneout
        if self.training:
            keep = torch.rand_like(new) < p
            return torch.where(keep, old, new)
        return p * old + (1.0 - p) * new
