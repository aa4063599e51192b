"""Toy TTS pipeline (``toy_tts``): text -> phoneme ids -> log-mel -> Griffin-Lim, through the task API.

    tts = load_pipeline("exp/toy_tts")                       # models/base/pipeline.py
    tts.synthesize(["Hello there."])                          # [Audio(waveform, 22050)]
    echelon-infer --ckpt_dir exp/toy_tts --text "Hello." --output_dir out --griffin_lim_iters 100
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from models.base import checkpoint as ckpt
from models.base.pipeline import PipelineMixin
from models.base.tasks import Audio, Capabilities, TextToSpeech
from models.base.text_split import front_end_ids
from models.example.toy_tts.config import ToyTTSExperimentConfig, ToyTTSInferConfig
from models.example.toy_tts.model import ToyTTS
from processors.griffin_lim import griffin_lim
from processors.text.frontend import TextFrontend
from utils.config import to_dict, validate
from utils.registry import register


@register("pipeline", "toy_tts")
class ToyTTSPipeline(TextToSpeech, PipelineMixin):
    task, settings_class, components, main_component = "tts", ToyTTSInferConfig, {"model": True}, "model"

    def __init__(self, model: ToyTTS, cfg: ToyTTSExperimentConfig, settings: ToyTTSInferConfig, device: str = "cpu"):
        self.model, self.cfg, self.settings, self.device = model.to(device).eval(), cfg, settings, device
        self.sample_rate, self.frontend = cfg.data.mel.sample_rate, TextFrontend(add_blank=False)

    @classmethod
    def saved_settings(cls, components):
        return dict(ckpt.read_config(ckpt.resolve_checkpoint_dir(components["model"])).get("infer") or {})

    @classmethod
    def from_components(cls, components, settings: ToyTTSInferConfig, device: str = "cpu") -> "ToyTTSPipeline":
        path = ckpt.resolve_checkpoint_dir(components["model"])
        cfg = validate(ckpt.expect_model_type(path, "toy_tts"), ToyTTSExperimentConfig)
        model = ToyTTS(**to_dict(cfg.model))
        ckpt.load_state_dict_strict(model, ckpt.load_model_weights(path, "tts"), str(path))
        return cls(model, cfg, settings, device)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}))  # one voice: no prompt, no named speakers

    def synthesize(self, texts: Sequence[str], prompts=None, prompt_texts=None, speakers=None,
                   seed: Optional[int] = None) -> List[Audio]:
        if prompts or speakers:
            raise ValueError("toy_tts speaks in its one training voice: it takes no prompt and no speaker")
        seed, s, mel = self.seed_or_default(seed), self.settings, self.cfg.data.mel
        outputs = []
        for index, text in enumerate(texts):
            ids = torch.tensor([front_end_ids(self.frontend, text)], device=self.device)
            log_mel = self.model.infer(ids, pace=s.pace)[0]
            wav = griffin_lim(log_mel, mel.sample_rate, mel.n_fft, mel.hop_length, mel.win_length, mel.f_min,
                              mel.f_max, s.griffin_lim_iters, s.griffin_lim_power, self.item_seed(seed, index))
            outputs.append(Audio(wav, self.sample_rate))
        return outputs
