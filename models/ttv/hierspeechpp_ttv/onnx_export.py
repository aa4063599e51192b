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
from typing import Dict, List, Optional

import torch

from models.base import checkpoint as ckpt
from models.base.onnx_backend import ModelGraph, PromptStyleGraph, export_graph, last_axis_length
from models.ttv.hierspeechpp_ttv.checkpoint import load_ttv
from modules.commons import generate_path, sequence_mask
from utils.registry import register

EXAMPLE_SYMBOLS = 21
EXAMPLE_PROMPT_FRAMES = 60


def _durations(m, ids, g, length_scale, noise_w, noise=None):
    """Text encoder and duration predictor: ``(m_p, logs_p, x_mask, w_ceil)`` at the text rate, as
    :meth:`TextToVec.generate` computes them (``noise`` None: drawn in the graph)."""
    x, m_p, logs_p, x_mask = m.enc_p(ids, last_axis_length(ids), g)
    logw = m.dp(x, x_mask, g=g, reverse=True, noise_scale=noise_w, noise=noise)
    return m_p, logs_p, x_mask, torch.ceil(torch.exp(logw) * x_mask * length_scale)


def _features(m, z_p, y_mask, g):
    """Prior sample ``z_p (1, C, T)`` -> ``(w2v (1, C_ssl, T), pitch (1, 1, 4T))``."""
    w2v = m.w2v_decoder(m.flow(z_p, y_mask, g, reverse=True), y_mask, g)
    return w2v, m.pp(w2v, g)


class TextToVecGraph(ModelGraph):
    """The arithmetic of :meth:`TextToVec.generate` for one item with a traceable output length."""

    def forward(self, ids, prompt_mel, scales):
        m = self.model
        g = m.style(prompt_mel, last_axis_length(prompt_mel))
        m_p, logs_p, x_mask, w_ceil = _durations(m, ids, g, scales[1], scales[2])
        y_mask = sequence_mask(torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()).unsqueeze(1).float()
        attn = generate_path(w_ceil, x_mask.unsqueeze(2) * y_mask.unsqueeze(-1))
        m_p = torch.matmul(attn.squeeze(1), m_p.transpose(1, 2)).transpose(1, 2)
        logs_p = torch.matmul(attn.squeeze(1), logs_p.transpose(1, 2)).transpose(1, 2)
        return _features(m, m_p + torch.randn_like(m_p) * torch.exp(logs_p) * scales[0], y_mask, g)


class DurationGraph(ModelGraph):
    """``input (1, Tx), g, duration_noise (1, 2, Tx), scales (2,) [length, noise_w]`` -> ``m_p, logs_p
    (1, C, Tx)`` and ``w_ceil (1, 1, Tx)``: the text half, the noise given."""

    def forward(self, ids, g, duration_noise, scales):
        m_p, logs_p, _, w_ceil = _durations(self.model, ids, g, scales[0], scales[1], duration_noise)
        return m_p, logs_p, w_ceil


class FeatureGraph(ModelGraph):
    """``z_p (1, C, T), g`` -> ``w2v (1, C_ssl, T), pitch (1, 1, 4T)``: the frame half on the prior sample."""

    def forward(self, z_p, g):
        return _features(self.model, z_p, torch.ones_like(z_p[:, :1]), g)


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


def export_runtime(model, folder: str | Path) -> Dict[str, Path]:
    """The three graphs the ``onnxruntime`` backend runs (:mod:`models.ttv.hierspeechpp_ttv.onnx_runtime`), in
    ``folder``: ``style``, ``durations`` and ``features``. Split where :meth:`TextToVec.generate` draws its noise
    (the duration predictor's, then the prior's on the expanded frames), so that both come from the caller's
    torch generator: a seeded call then gives the torch path's output."""
    model, folder = model.prepare_for_inference(), Path(folder)
    generator = torch.Generator().manual_seed(0)
    vocab, cfg = model.enc_p.emb.num_embeddings, model.config
    ids = (torch.arange(EXAMPLE_SYMBOLS) * 5 % max(vocab - 1, 1) + 1).unsqueeze(0)
    g = torch.randn(1, cfg.gin_channels, 1, generator=generator)
    z_p = torch.randn(1, cfg.inter_channels, 3 * EXAMPLE_SYMBOLS, generator=generator)
    meta = {"model_type": "hierspeechpp_ttv"}
    return {
        "style": export_graph(PromptStyleGraph(model), (torch.randn(1, 80, EXAMPLE_PROMPT_FRAMES, generator=generator),),
                              folder / "style.onnx", ["prompt_mel"], ["g"], {"prompt_mel": {2: "prompt_frames"}},
                              meta),
        "durations": export_graph(
            DurationGraph(model), (ids, g, torch.randn(1, 2, EXAMPLE_SYMBOLS, generator=generator),
                                   torch.tensor([1.0, 1.0])), folder / "durations.onnx",
            ["input", "g", "duration_noise", "scales"], ["m_p", "logs_p", "w_ceil"],
            {"input": {1: "phonemes"}, "duration_noise": {2: "phonemes"}, "m_p": {2: "phonemes"},
             "logs_p": {2: "phonemes"}, "w_ceil": {2: "phonemes"}}, meta),
        "features": export_graph(FeatureGraph(model), (z_p, g), folder / "features.onnx", ["z_p", "g"],
                                 ["w2v", "pitch"], {"z_p": {2: "frames"}, "w2v": {2: "frames"},
                                                    "pitch": {2: "f0_frames"}}, meta)}


@register("exporter", "hierspeechpp_ttv")
def export_checkpoint(ckpt_dir: Optional[str | Path], out: str | Path) -> List[Path]:
    """``echelon-export onnx`` of a TTV checkpoint (Echelon dir, or official ``.pth`` with config.json beside)."""
    if ckpt_dir is None:
        raise ckpt.CheckpointNotFoundError("TTV export needs --ckpt_dir (a hierspeechpp_ttv checkpoint)")
    return [export_ttv(load_ttv(ckpt_dir), out)]
