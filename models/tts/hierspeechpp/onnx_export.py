"""HierSpeech++ synthesizer -> ONNX: the voice-conversion path from features to waveform.

Graph ``vc``: inputs ``ssl`` float32 ``(1, 1024, T)`` (the SSL features of the source, 50 frames/s), ``log_f0``
``(1, 1, 4T)`` (ln(F0 + 1) re-targeted to the prompt, unvoiced 0), ``prompt_mel`` ``(1, 80, Tm)`` (the prompt's
log-mel), ``noise`` ``(1, inter, T)`` (standard normal; zeros for a deterministic run) and ``noise_scale``
``(1,)``; output ``wav`` ``(1, 1, 320T)`` at 16 kHz. T and Tm are dynamic.

Not in the graph, and why (they stay in Python, as in :class:`~models.tts.hierspeechpp.inference`):

* F0 extraction (YAAPT, numba-compiled loops with data-dependent control flow, or WORLD's C code) and its
  re-targeting to the prompt's F0 statistics (per-utterance means over voiced frames);
* SSL feature extraction (MMS / wav2vec 2.0 through ``transformers``, 300 M parameters; export it with its
  own tooling if needed) and the resampling and normalisation around it;
* the prompt's mel spectrogram (STFT front end) and denoising.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import torch

from models.base import checkpoint as ckpt
from models.base.onnx_backend import ModelGraph, export_graph, last_axis_length
from utils.registry import register

EXAMPLE_FRAMES = 40
EXAMPLE_PROMPT_FRAMES = 60


class VoiceConversionGraph(ModelGraph):
    """The arithmetic of :meth:`HierSpeechPPSynthesizer.convert` for one item (no padding)."""

    def forward(self, ssl, log_f0, prompt_mel, noise, noise_scale):
        m = self.model
        g = m.style(prompt_mel, last_axis_length(prompt_mel))
        _, m_p, logs_p, y_mask = m.enc_p_l(ssl, log_f0, last_axis_length(ssl), g=g)
        z = (m_p + noise * torch.exp(logs_p) * noise_scale) * y_mask
        z = m.flow(m.flow_l(z, y_mask, g=g, reverse=True), y_mask, g=g, reverse=True)
        e, _ = m.sn(z, g)
        return m.dec(z, e, g=g)


def export_vc(model, out: str | Path) -> Path:
    """Write the ``vc`` graph of a synthesizer (folded weight norm, the plain anti-aliasing path)."""
    model = model.prepare_for_inference(polyphase=False, channels_last=False)
    inter = model.config.inter_channels
    generator = torch.Generator().manual_seed(0)
    example = (torch.randn(1, model.config.ssl_channels, EXAMPLE_FRAMES, generator=generator),
               torch.rand(1, 1, 4 * EXAMPLE_FRAMES, generator=generator) * 5.0,
               torch.randn(1, model.config.n_mel_channels, EXAMPLE_PROMPT_FRAMES, generator=generator),
               torch.zeros(1, inter, EXAMPLE_FRAMES), torch.tensor([0.333]))
    return export_graph(
        VoiceConversionGraph(model), example, out, ["ssl", "log_f0", "prompt_mel", "noise", "noise_scale"], ["wav"],
        {"ssl": {2: "frames"}, "log_f0": {2: "f0_frames"}, "prompt_mel": {2: "prompt_frames"},
         "noise": {2: "frames"}, "wav": {2: "samples"}},
        {"model_type": "hierspeechpp_vc", "sample_rate": 16000, "hop_length": model.hop_length})


@register("exporter", "hierspeechpp")
def export_checkpoint(ckpt_dir: Optional[str | Path], out: str | Path) -> List[Path]:
    """``echelon-export onnx`` of a HierSpeech++ synthesizer checkpoint: its voice-conversion graph."""
    from models.tts.hierspeechpp.inference import load_echelon_synthesizer

    if ckpt_dir is None:
        raise ckpt.CheckpointNotFoundError("HierSpeech++ export needs --ckpt_dir (an Echelon synthesizer checkpoint)")
    return [export_vc(load_echelon_synthesizer(ckpt_dir)[0], out)]
