"""TTV training losses (``train_ttv_v1.py``), each returned unweighted and weighted.

total = c_w2v * w2v_L1 + c_kl * KL + c_f0 * F0_L1 + SDP NLL + CTC   (official weights 10, 0.1, 1, 1, 1)

w2v L1: the released trainer (restored 2024-02-17 as the "paper version") averages |w2v - w2v_pred| over the
whole padded tensor (``masked=False``, default, needed to reproduce the official numbers); ``masked=True``
divides the same sum by the number of valid frames * 1024 instead (the variant briefly released, and the
announced TTV v2 loss), which does not let the padding fraction of a batch scale the loss down.
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F

from models.ttv.hierspeechpp_ttv.model import F0_PER_FRAME, PITCH_SEGMENT, TTVTrainOutput
from modules.commons import slice_segments
from modules.losses import kl_loss


def f0_target_slice(log_f0: torch.Tensor, ids_slice: torch.Tensor) -> torch.Tensor:
    """ln(F0 + 1) (B, 1, 4T) -> the (B, 240) window matching the pitch predictor's 60-frame slice."""
    return slice_segments(log_f0, ids_slice * F0_PER_FRAME, PITCH_SEGMENT * F0_PER_FRAME).squeeze(1)


def ttv_losses(out: TTVTrainOutput, w2v: torch.Tensor, log_f0: torch.Tensor, length: torch.Tensor,
               text_for_ctc: torch.Tensor, text_ctc_length: torch.Tensor, c_w2v: float = 10.0,
               c_kl: float = 0.1, c_f0: float = 1.0, c_dur: float = 1.0, c_ctc: float = 1.0,
               masked_w2v: bool = False) -> Dict[str, torch.Tensor]:
    """All TTV losses. ``log_f0`` (B, 1, 4T) is ln(F0_Hz + 1) with 0 for unvoiced frames."""
    diff = torch.abs(w2v - out.w2v_predicted * out.y_mask)
    if masked_w2v:
        w2v_l1 = diff.sum() / (out.y_mask.sum() * w2v.size(1))
    else:
        w2v_l1 = diff.mean()
    kl = kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.y_mask)
    f0_target = f0_target_slice(log_f0, out.ids_slice)
    f0_l1 = F.l1_loss(out.pitch_predicted.squeeze(1), f0_target)
    dur = torch.sum(out.l_length)
    log_probs = out.phoneme_logits.permute(2, 0, 1).log_softmax(2)
    ctc = F.ctc_loss(log_probs, text_for_ctc, length, text_ctc_length)
    total = c_w2v * w2v_l1 + c_kl * kl + c_f0 * f0_l1 + c_dur * dur + c_ctc * ctc
    return {"w2v_l1": w2v_l1, "kl": kl, "f0_l1": f0_l1, "dur_sdp": dur, "ctc": ctc, "total": total,
            "f0_target": f0_target}
