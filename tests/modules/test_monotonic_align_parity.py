"""MAS parity: the TTV training pass of the official HierSpeech++ code (Cython ``maximum_path``).

The fixture stores the alignment ``tr_attn`` and the text prior already expanded by it. Every token owns at
least one frame, so the token-level prior is read back from the expanded one; MAS is then re-run on the
VITS negative cross-entropy between ``tr_z_p`` and that prior and must give the stored path exactly.
"""

import torch

from modules.monotonic_align import gaussian_scores, maximum_path_numba, maximum_path_torch, search_alignment
from tests.helpers import load_fixture


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
    neg_cent = gaussian_scores(out["tr_z_p"], m_p, logs_p)
    mask = (x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)).squeeze(1)
    for fn in (maximum_path_numba, maximum_path_torch):
        path = fn(neg_cent, mask)
        assert torch.equal(path, attn), fn.__name__
    assert torch.equal(search_alignment(out["tr_z_p"], m_p, logs_p, x_mask, y_mask).squeeze(1), attn)
