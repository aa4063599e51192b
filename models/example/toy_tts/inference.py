"""Toy TTS pipeline (``toy_tts``): text -> phoneme ids -> log-mel -> Griffin-Lim, through the task API.

    tts = load_pipeline("exp/toy_tts")                       # models/base/pipeline.py
    tts.synthesize(["Hello there."])                          # [Audio(waveform, 22050)]
    echelon-infer --ckpt_dir exp/toy_tts --text "Hello." --output_dir out --griffin_lim_iters 100
"""

from __future__ import annotations

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.pipeline import PipelineMixin
from models.base.sentence_tts import SentenceTTS, Voice
from models.base.tasks import Capabilities
from models.base.text_split import front_end_ids
from models.example.toy_tts.config import ToyTTSExperimentConfig, ToyTTSInferConfig
from models.example.toy_tts.model import ToyTTS
from processors.griffin_lim import griffin_lim
from processors.text.frontend import TextFrontend
from utils.config import validate
from utils.registry import register


@register("pipeline", "toy_tts")
class ToyTTSPipeline(SentenceTTS, PipelineMixin):
    task, settings_class, components, main_component = "tts", ToyTTSInferConfig, {"model": True}, "model"

    def __init__(self, model: ToyTTS, cfg: ToyTTSExperimentConfig, settings: ToyTTSInferConfig, device: str = "cpu"):
        self.model, self.cfg, self.settings, self.device = model.to(device).eval(), cfg, settings, device
        self.sample_rate, self.frontend = cfg.data.sample_rate, TextFrontend(add_blank=False)

    @classmethod
    def from_components(cls, components, settings: ToyTTSInferConfig, device: str = "cpu") -> "ToyTTSPipeline":
        path = ckpt.resolve_checkpoint_dir(components["model"])
        cfg = validate(ckpt.expect_model_type(path, "toy_tts"), ToyTTSExperimentConfig)
        model = ToyTTS.from_config(cfg.model)
        ckpt.load_state_dict_strict(model, ckpt.load_model_weights(path, "tts"), str(path))
        return cls(model, cfg, settings, device)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}))  # one voice: no prompt, no named speakers

    def voice(self, given: Voice) -> None:
        if given.speaker is not None:
            raise ValueError("toy_tts speaks in its one training voice: it takes no speaker")

    def synthesize_piece(self, text: str, voice: None, generator: torch.Generator) -> np.ndarray:
        ids = torch.tensor([front_end_ids(self.frontend, text)], device=self.device)
        log_mel = self.model.infer(ids, length_scale=self.settings.length_scale)[0]
        d, s = self.cfg.data, self.settings
        return griffin_lim(log_mel, d.sample_rate, d.filter_length, d.hop_length, d.win_length, d.mel_fmin,
                           d.mel_fmax, s.griffin_lim_iters, s.griffin_lim_power, generator.initial_seed())
