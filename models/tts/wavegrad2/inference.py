"""WaveGrad 2 inference: text -> speech with any refinement schedule.

Python (task-level API, :class:`models.base.tasks.TextToSpeech`)::

    tts = WaveGrad2TTS.from_checkpoint("exp/wavegrad2", steps=6)      # or schedule="linear_1000" / "best.json"
    out = tts.synthesize(["Hello there."], seed=1)                     # [Audio(waveform, 24000)]

CLI (``bins/infer.py``; pipeline ``wavegrad2``, settings = the checkpoint's ``infer`` section + overrides)::

    echelon-infer --ckpt_dir exp/wavegrad2 --text "Hello." --output_dir out --set infer.steps=50
    echelon-infer --ckpt_dir exp/wavegrad2 --text_file lines.txt --schedule exp/wavegrad2/schedule_6.json
    echelon-infer --ckpt_dir exp/wavegrad2 --jobs jobs.jsonl --output_dir out     # {"id", "text", "speaker"?}

The schedule is, by priority: ``--steps``/``infer.steps`` (a schedule of that many steps ending at the training
schedule's noise floor, :func:`modules.diffusion.schedule_for_steps`; 1000 = the training schedule), else
``--schedule``/``infer.schedule`` (preset name or a schedule file written by
``python -m models.tts.wavegrad2.schedule_search``; ``--steps null`` drops steps a checkpoint saved).
Texts longer than ``infer.max_sentence_chars`` are spoken sentence by sentence, joined with ``infer.pause_seconds``
of silence (:class:`models.base.sentence_tts.SentenceTTS`). Texts that fail are skipped and listed in the run's
bad-item list (``models/base/inference.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.pipeline import PipelineMixin
from models.base.text_split import front_end_ids
from models.base.sentence_tts import SentenceTTS, Voice
from models.base.tasks import Capabilities
from models.tts.wavegrad2.config import WaveGrad2DataConfig, WaveGrad2ExperimentConfig, WaveGrad2InferConfig
from processors.data.manifest import model_speaker_id
from models.tts.wavegrad2.model import WaveGrad2
from modules.diffusion import NoiseSchedule, resolve_schedule, schedule_for_steps
from processors.text.frontend import TextFrontend
from utils.config import apply_overrides, to_dict, validate
from utils.registry import register

log = logging.getLogger(__name__)


def inference_schedule(model: WaveGrad2, infer: WaveGrad2InferConfig) -> NoiseSchedule:
    """The schedule ``infer`` asks for (see the module doc)."""
    if infer.steps is not None:  # >= 1: checked by WaveGrad2InferConfig
        train = model.train_schedule
        if infer.steps == train.steps:
            return train
        return NoiseSchedule.from_betas(schedule_for_steps(infer.steps, float(train.noise_levels[-1])))
    return resolve_schedule(infer.schedule)


@register("pipeline", "wavegrad2")
class WaveGrad2TTS(SentenceTTS, PipelineMixin):
    """A loaded model with its front end, speaker table and sampling settings (task API, pipeline ``wavegrad2``:
    component ``model`` = an Echelon checkpoint dir, settings :class:`WaveGrad2InferConfig`)."""

    task = "tts"
    settings_class = WaveGrad2InferConfig
    components = {"model": True}
    main_component = "model"

    def __init__(self, model: WaveGrad2, data: WaveGrad2DataConfig, settings: WaveGrad2InferConfig,
                 device: Union[str, torch.device] = "cpu"):  # fmt: skip
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.data = data
        self.sample_rate = model.sample_rate
        self.frontend = TextFrontend(add_blank=data.add_blank)
        self.schedule = inference_schedule(self.model, settings)
        self.settings = settings

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: WaveGrad2InferConfig,
                        device: str = "cpu") -> "WaveGrad2TTS":
        """The pipeline's way in: the validated ``settings`` replace the checkpoint's ``infer`` section."""
        return cls.from_checkpoint(components["model"], device, settings=settings)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str | Path, device: str = "cpu", overrides: Sequence[str] = (),
                        steps: Optional[int] = None, schedule: Optional[str] = None,
                        settings: Optional[WaveGrad2InferConfig] = None) -> "WaveGrad2TTS":
        """Echelon checkpoint/experiment dir; ``overrides`` like ``infer.steps=50`` change the saved config,
        ``settings`` replace its ``infer`` section, then ``steps`` or ``schedule`` (each checked on validation:
        a schedule file the saved section names but that is gone does not block ``steps``)."""
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        raw = apply_overrides(ckpt.expect_model_type(path, "wavegrad2"), list(overrides))
        if settings is not None:
            raw["infer"] = to_dict(settings)
        if steps is not None or schedule is not None:
            changes = {"steps": steps} if steps is not None else {"schedule": schedule, "steps": None}
            raw["infer"] = {**(raw.get("infer") or {}), **changes}
        cfg = validate(raw, WaveGrad2ExperimentConfig)
        model = WaveGrad2.from_config(cfg.model)
        ckpt.load_state_dict_strict(model, ckpt.load_model_weights(path, "model"), str(path))
        return cls(model, cfg.data, cfg.infer, device)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}), speakers=tuple(self.data.speakers))

    def speaker_id(self, speaker: Union[int, str, None]) -> Optional[torch.Tensor]:
        """Name (``data.speakers``) or id -> ``(1,)``; None for a single-speaker model."""
        n = self.model.n_speakers
        sid = model_speaker_id(speaker, self.data.speakers, n, has_embedding=n > 0)
        return None if sid is None else torch.tensor([sid], device=self.device)

    def voice(self, given: Voice) -> Union[int, str, None]:
        self.speaker_id(given.speaker)  # an unknown speaker fails before any synthesis
        return given.speaker

    def text_ids(self, text: str) -> List[int]:
        return front_end_ids(self.frontend, text)

    @torch.no_grad()
    def synthesize_piece(self, text: str, voice: Union[int, str, None], generator: torch.Generator) -> np.ndarray:
        """One sentence -> float32 waveform; every draw of the refinement comes from ``generator``."""
        ids = torch.tensor([self.text_ids(text)], dtype=torch.long, device=self.device)
        out = self.model.infer(ids, torch.tensor([ids.size(1)], device=self.device), self.schedule,
                               speakers=self.speaker_id(voice), generator=generator,
                               clip_denoised=self.settings.clip_denoised, length_scale=self.settings.length_scale)
        return out["wav"][0, : int(out["lengths"][0])].float().cpu().numpy()
