"""The registered zero-shot TTS pipeline ``hierspeechpp_tts`` (TTV checkpoints load in ``checkpoint.py``).

Pipeline spec (``echelon-infer --pipeline hsp_tts.json5 --prompt p.wav --text "Hello." --output_dir out``)::

    {pipeline: "hierspeechpp_tts",
     components: {ttv: "exp/ttv", synthesizer: "exp/synth", sr: "exp/speechsr48k"},   // sr optional
     infer: {output_rate: 48000}}                                                       // TTSOptions fields

A TTV checkpoint directory alone names this pipeline too (its synthesizer then comes from
``--component synthesizer=DIR``; ``--synthesizer DIR`` is the older spelling of the same).

Python::

    tts = load_pipeline("hsp_tts.json5")                    # TextToSpeech task API
    tts.synthesize(["Some text."], prompts=["prompt.wav"])[0]  # -> Audio
    wav = tts_call("Some text.", "prompt.wav", ttv="exp/ttv", synthesizer="exp/synth", output_rate=48000)

Official checkpoints are plain state-dict ``.pth`` files with a ``config.json`` next to them (the layout of
``logs/ttv_libritts_v1/``); they load strictly. They are not bundled (not reachable offline): pass their path.
The synthesizer and SpeechSR come from their own packages through the registry (pipelines ``hierspeechpp``
and ``speechsr``), never by importing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base import onnx_backend
from models.base.inference import InferenceError
from models.base.pipeline import PipelineMixin
from models.base.tasks import load_input
from models.ttv.hierspeechpp_ttv.checkpoint import load_ttv
from models.ttv.hierspeechpp_ttv.model import TextToVec
from models.ttv.hierspeechpp_ttv.onnx_runtime import runtime_for as ttv_runtime
from models.ttv.hierspeechpp_ttv.tts import SAMPLE_RATE, TTSOptions, ZeroShotSentences, ZeroShotTTS
from utils.registry import get, register

OUTPUT_RATES = (16000, 24000, 48000)


def load_synthesizer(path: str | Path) -> torch.nn.Module:
    """Official ``.pth`` (+ ``config.json``) or an Echelon synthesizer directory (no SSL model loaded)."""
    return get("pipeline", "hierspeechpp").load_synthesizer(path)


def load_tts(ttv: str | Path, synthesizer: str | Path, device: str = "cpu") -> ZeroShotTTS:
    """Both models from official ``.pth`` files or Echelon directories; SpeechSR = bundled release."""
    return ZeroShotTTS(load_ttv(ttv), load_synthesizer(synthesizer), device=device)


def tts(text: str | Sequence[str], prompt: str | Path | np.ndarray, ttv: str | Path | TextToVec,
        synthesizer: str | Path | torch.nn.Module, output_rate: int = 16000, device: str = "cpu",
        **options) -> np.ndarray | List[np.ndarray]:
    """One-call TTS: text (or a list of texts) in the voice of ``prompt`` (a wav path at any rate, or a 16 kHz
    array) -> float32 waveform(s) at ``output_rate``; ``options`` are :class:`TTSOptions` fields."""
    as_models = isinstance(ttv, TextToVec), isinstance(synthesizer, torch.nn.Module)
    if all(as_models):
        pipeline = ZeroShotTTS(ttv, synthesizer, device=device)
    elif any(as_models):
        raise TypeError("give both ttv and synthesizer as models, or both as checkpoint paths")
    else:
        pipeline = load_tts(ttv, synthesizer, device)
    wav = load_input(prompt, SAMPLE_RATE).waveform if isinstance(prompt, (str, Path)) else \
        np.asarray(prompt, dtype=np.float32)
    opts = TTSOptions(output_rate=output_rate, **options)
    if isinstance(text, str):
        return pipeline.synthesize(text, wav, opts)
    return pipeline.synthesize_many(list(text), wav, opts)


@register("pipeline", "hierspeechpp_tts")
@register("pipeline", "hierspeechpp_ttv")  # a lone TTV checkpoint dir: this pipeline with it as ``ttv``
class HierSpeechTTS(ZeroShotSentences, PipelineMixin):
    """Zero-shot TTS task API: TTV + synthesizer (+ SpeechSR). Settings: :class:`TTSOptions`; the sentence loop of
    :class:`ZeroShotSentences`."""

    task = "tts"
    settings_class = TTSOptions
    backends = onnx_backend.BACKENDS  # onnxruntime: the TTV's, synthesizer's and SpeechSR's exported graphs
    components = {"ttv": True, "synthesizer": True, "sr": False}
    main_component = "ttv"

    def __init__(self, engine: ZeroShotTTS, settings: TTSOptions):
        if settings.output_rate not in OUTPUT_RATES:
            raise InferenceError(f"infer.output_rate must be one of {OUTPUT_RATES}, got {settings.output_rate}")
        if settings.denoise_ratio > 0 and engine.denoiser is None:
            raise InferenceError("--denoise_ratio > 0 needs a denoiser hook (none ships with Echelon); "
                                 "use --denoise_ratio 0")
        super().__init__(engine, settings)

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: TTSOptions,
                        device: str = "cpu", backend: Optional[str] = None) -> "HierSpeechTTS":
        ttv, synthesizer = load_ttv(components["ttv"]), load_synthesizer(components["synthesizer"])
        if onnx_backend.on_graphs(backend, device):  # the torch weights are dropped once the graphs are there
            ttv = ttv_runtime(ttv, Path(components["ttv"]))
            synthesizer = get("pipeline", "hierspeechpp").synthesizer_runtime(synthesizer,
                                                                              Path(components["synthesizer"]))
        speechsr = None
        if components.get("sr"):
            sr_cls = get("pipeline", "speechsr")
            speechsr = sr_cls.from_components({"model": components["sr"]}, sr_cls.settings_class(), device,
                                              backend=backend)
            if speechsr.sample_rate != settings.output_rate:
                raise InferenceError(f"the sr component upsamples to {speechsr.sample_rate} Hz but "
                                     f"infer.output_rate is {settings.output_rate}")
        return cls(ZeroShotTTS(ttv, synthesizer, speechsr=speechsr, device=device), settings)
