"""HierSpeech++ Text-to-Vec -> ONNX: phoneme ids + prompt mel -> SSL features and F0, dynamic lengths.

Graph ``ttv``: inputs ``input`` int64 ``(1, Tx)`` (blank-interleaved phoneme ids, as the TTV front end makes
them), ``prompt_mel`` float32 ``(1, 80, Tm)`` (the prompt's log-mel, the style source) and ``scales`` float32
``(3,)`` [noise, length, noise_w], like Piper's VITS graphs; outputs ``w2v`` ``(1, 1024, T)`` and ``pitch``
``(1, 1, 4T)`` (the predicted F0 the synthesizer's ``vc`` graph takes). Both noises are drawn inside the graph
(``RandomNormalLike``), so only a zero-noise run equals the torch path number for number.

Not in the graph: the text front end (espeak-ng phonemisation, in Python), the prompt's mel spectrogram and
denoising, and the pitch post-processing of :mod:`models.ttv.hierspeechpp_ttv.tts` (re-targeting to the prompt).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import torch

from models.base import checkpoint as ckpt
from models.base.onnx_backend import ModelGraph, export_graph, last_axis_length
from modules.commons import generate_path, sequence_mask
from utils.registry import register

EXAMPLE_SYMBOLS = 21
EXAMPLE_PROMPT_FRAMES = 60


class TextToVecGraph(ModelGraph):
    """The arithmetic of :meth:`TextToVec.generate` for one item with a traceable output length."""

    def forward(self, ids, prompt_mel, scales):
        m = self.model
        g = m.style(prompt_mel, last_axis_length(prompt_mel))
        x, m_p, logs_p, x_mask = m.enc_p(ids, last_axis_length(ids), g)
        logw = m.dp(x, x_mask, g=g, reverse=True, noise_scale=scales[2])
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * scales[1])
        y_mask = sequence_mask(torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()).unsqueeze(1).float()
        attn = generate_path(w_ceil, x_mask.unsqueeze(2) * y_mask.unsqueeze(-1))
        m_p = torch.matmul(attn.squeeze(1), m_p.transpose(1, 2)).transpose(1, 2)
        logs_p = torch.matmul(attn.squeeze(1), logs_p.transpose(1, 2)).transpose(1, 2)
        z = m.flow(m_p + torch.randn_like(m_p) * torch.exp(logs_p) * scales[0], y_mask, g, reverse=True)
        w2v = m.w2v_decoder(z, y_mask, g)
        return w2v, m.pp(w2v, g)


def export_ttv(model, out: str | Path) -> Path:
    model = model.prepare_for_inference()
    vocab = model.enc_p.emb.num_embeddings
    ids = (torch.arange(EXAMPLE_SYMBOLS) * 5 % max(vocab - 1, 1) + 1).unsqueeze(0)
    mel = torch.randn(1, 80, EXAMPLE_PROMPT_FRAMES, generator=torch.Generator().manual_seed(0))
    return export_graph(
        TextToVecGraph(model), (ids, mel, torch.tensor([0.333, 1.0, 1.0])), out, ["input", "prompt_mel", "scales"],
        ["w2v", "pitch"], {"input": {1: "phonemes"}, "prompt_mel": {2: "prompt_frames"}, "w2v": {2: "frames"},
                           "pitch": {2: "f0_frames"}},
        {"model_type": "hierspeechpp_ttv"})


@register("exporter", "hierspeechpp_ttv")
def export_checkpoint(ckpt_dir: Optional[str | Path], out: str | Path) -> List[Path]:
    """``echelon-export onnx`` of a TTV checkpoint (Echelon dir, or official ``.pth`` with config.json beside)."""
    from models.ttv.hierspeechpp_ttv.inference import load_ttv

    if ckpt_dir is None:
        raise ckpt.CheckpointNotFoundError("TTV export needs --ckpt_dir (a hierspeechpp_ttv checkpoint)")
    return [export_ttv(load_ttv(ckpt_dir), out)]
