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
from typing import Dict, List, Optional

import torch

from models.base import checkpoint as ckpt
from models.base.onnx_backend import ModelGraph, PromptStyleGraph, export_graph, last_axis_length
from models.tts.hierspeechpp.checkpoint import load_echelon_synthesizer
from utils.registry import register

EXAMPLE_FRAMES = 40
EXAMPLE_PROMPT_FRAMES = 60


class SynthesisGraph(ModelGraph):
    """The arithmetic of :meth:`HierSpeechPPSynthesizer.convert` for one item (no padding) under a given style:
    ``ssl (1, C_ssl, T), log_f0 (1, 1, 4T), g (1, gin, 1), noise (1, inter, T), noise_scale (1,)`` ->
    ``wav (1, 1, hop T)``."""

    def forward(self, ssl, log_f0, g, noise, noise_scale):
        m = self.model
        _, m_p, logs_p, y_mask = m.enc_p_l(ssl, log_f0, last_axis_length(ssl), g=g)
        z = (m_p + noise * torch.exp(logs_p) * noise_scale) * y_mask
        z = m.flow(m.flow_l(z, y_mask, g=g, reverse=True), y_mask, g=g, reverse=True)
        e, _ = m.sn(z, g)
        return m.dec(z, e, g=g)


class VoiceConversionGraph(ModelGraph):
    """The published ``vc`` graph: the style of the prompt's mel, then :class:`SynthesisGraph`."""

    def __init__(self, model):
        super().__init__(model)
        self.style, self.synthesis = PromptStyleGraph(model), SynthesisGraph(model)

    def forward(self, ssl, log_f0, prompt_mel, noise, noise_scale):
        return self.synthesis(ssl, log_f0, self.style(prompt_mel), noise, noise_scale)


def _examples(model) -> dict:
    generator = torch.Generator().manual_seed(0)
    cfg = model.config
    return {"ssl": torch.randn(1, cfg.ssl_channels, EXAMPLE_FRAMES, generator=generator),
            "log_f0": torch.rand(1, 1, 4 * EXAMPLE_FRAMES, generator=generator) * 5.0,
            "prompt_mel": torch.randn(1, cfg.n_mel_channels, EXAMPLE_PROMPT_FRAMES, generator=generator),
            "g": torch.randn(1, cfg.gin_channels, 1, generator=generator),
            "noise": torch.zeros(1, cfg.inter_channels, EXAMPLE_FRAMES), "noise_scale": torch.tensor([0.333])}


# dynamic axes of every input and output name the graphs here use
_AXES = {"ssl": {2: "frames"}, "log_f0": {2: "f0_frames"}, "prompt_mel": {2: "prompt_frames"},
         "noise": {2: "frames"}, "wav": {2: "samples"}}


def _export(graph: ModelGraph, inputs: List[str], outputs: List[str], out: str | Path, model_type: str) -> Path:
    examples, model = _examples(graph.model), graph.model
    return export_graph(graph, tuple(examples[name] for name in inputs), out, inputs, outputs,
                        {name: _AXES[name] for name in inputs + outputs if name in _AXES},
                        {"model_type": model_type, "sample_rate": 16000, "hop_length": model.hop_length})


def _prepared(model):
    """Folded weight norm and the plain anti-aliasing path (the torch fast path's polyphase and channels-last
    rewrites are CPU-kernel choices onnxruntime makes itself)."""
    return model.prepare_for_inference(polyphase=False, channels_last=False)


def export_vc(model, out: str | Path) -> Path:
    """Write the published ``vc`` graph of a synthesizer (prompt mel in, 16 kHz waveform out)."""
    return _export(VoiceConversionGraph(_prepared(model)), ["ssl", "log_f0", "prompt_mel", "noise", "noise_scale"],
                   ["wav"], out, "hierspeechpp_vc")


def export_runtime(model, folder: str | Path) -> Dict[str, Path]:
    """The two graphs the ``onnxruntime`` backend runs (:mod:`models.tts.hierspeechpp.onnx_runtime`), written
    into ``folder``: ``style`` (prompt mel -> g) and ``synthesis`` (features, F0, g, noise -> waveform). Split
    at the style so that the pipelines mix styles as the torch path does (the denoised prompt's, ``denoise_ratio``)
    and the TTS pipeline hands over the style it computed once per prompt."""
    model, folder = _prepared(model), Path(folder)
    return {"style": _export(PromptStyleGraph(model), ["prompt_mel"], ["g"], folder / "style.onnx", "hierspeechpp_style"),
            "synthesis": _export(SynthesisGraph(model), ["ssl", "log_f0", "g", "noise", "noise_scale"], ["wav"],
                                 folder / "synthesis.onnx", "hierspeechpp_synthesis")}


@register("exporter", "hierspeechpp")
def export_checkpoint(ckpt_dir: Optional[str | Path], out: str | Path) -> List[Path]:
    """``echelon-export onnx`` of a HierSpeech++ synthesizer checkpoint: its voice-conversion graph."""
    if ckpt_dir is None:
        raise ckpt.CheckpointNotFoundError("HierSpeech++ export needs --ckpt_dir (an Echelon synthesizer checkpoint)")
    return [export_vc(load_echelon_synthesizer(ckpt_dir)[0], out)]
