"""MAS parity: the TTV training pass of the official HierSpeech++ code (Cython ``maximum_path``).

The fixture stores the alignment ``tr_attn`` and the text prior already expanded by it. Every token owns at
least one frame, so the token-level prior is read back from the expanded one; MAS is then re-run on the
VITS negative cross-entropy between ``tr_z_p`` and that prior and must give the stored path exactly.
"""

import math

import torch

from modules.monotonic_align import maximum_path_numba, maximum_path_torch
from tests.helpers import load_fixture


def _neg_cent(z_p, m_p, logs_p):
    """``(B, Ty, Tx)`` log N(z_p[:, :, y]; m_p[:, :, x], exp(logs_p)) summed over channels."""
    s_p_sq_r = torch.exp(-2 * logs_p)
    c1 = torch.sum(-0.5 * math.log(2 * math.pi) - logs_p, [1], keepdim=True)
    c2 = torch.matmul(-0.5 * (z_p**2).transpose(1, 2), s_p_sq_r)
    c3 = torch.matmul(z_p.transpose(1, 2), m_p * s_p_sq_r)
    c4 = torch.sum(-0.5 * (m_p**2) * s_p_sq_r, [1], keepdim=True)
    return c1 + c2 + c3 + c4


def test_mas_reproduces_official_ttv_alignment():
    fx = load_fixture("hierspeechpp/ttv_tiny.pt")
    out, inp = fx["outputs"], fx["inputs"]["train"]
    attn = out["tr_attn"]  # (B, Ty, Tx)
    y_mask = out["tr_y_mask"]  # (B, 1, Ty)
    t_x = inp["text_length"]
    x_mask = (torch.arange(attn.size(2)).unsqueeze(0) < t_x.unsqueeze(1)).float().unsqueeze(1)
    # First frame of each token (argmax of the 0/1 column) -> token-level prior.
    first = attn.argmax(dim=1)  # (B, Tx)
    idx = first.unsqueeze(1).expand(-1, out["tr_m_p_expanded"].size(1), -1)
    m_p = out["tr_m_p_expanded"].gather(2, idx) * x_mask
    logs_p = out["tr_logs_p_expanded"].gather(2, idx) * x_mask
    neg_cent = _neg_cent(out["tr_z_p"], m_p, logs_p)
    mask = (x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)).squeeze(1)
    for fn in (maximum_path_numba, maximum_path_torch):
        path = fn(neg_cent, mask)
        assert torch.equal(path, attn), fn.__name__
