"""The served pipelines by name, loaded once at start-up through ``models.base.pipeline.load_pipeline``.

A request picks a model by name only (a path in a request is just an unknown name: 404). Per-request settings
go through :meth:`models.base.tasks.TaskPipeline.with_settings` on a copy; only :data:`REQUEST_SETTINGS` can be
set by a request (numbers that steer sampling and output rate, never paths or memory/size knobs).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from models.base.pipeline import load_pipeline
from models.base.tasks import TaskPipeline
from serving.config import ModelEntry, model_spec
from serving.errors import ApiError

log = logging.getLogger("echelon.serve")

# settings a request may change (each only where the model's settings have it)
REQUEST_SETTINGS = ("noise_scale", "noise_scale_w", "length_scale", "noise_scale_ttv", "noise_scale_vc",
                    "denoise_ratio", "output_rate", "target_rate", "pause_seconds")
TASK_METHOD = {"tts": "synthesize", "vc": "convert", "sr": "upsample"}


@dataclass
class ServedModel:
    name: str
    pipeline: TaskPipeline
    task: str  # "tts" | "vc" | "sr"

    def settings(self) -> Dict[str, Any]:
        s = self.pipeline.settings
        return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)} if dataclasses.is_dataclass(s) else {}

    def request_settings(self) -> List[str]:
        return [k for k in REQUEST_SETTINGS if k in self.settings()]

    def describe(self) -> Dict[str, Any]:
        caps = self.pipeline.capabilities
        return {"id": self.name, "object": "model", "owned_by": "echelon", "task": self.task,
                "sample_rate": int(self.pipeline.sample_rate), "speakers": list(caps.speakers),
                "audio_prompt": bool(caps.audio_prompt), "prompt_text": bool(caps.prompt_text),
                "denoiser": getattr(self.denoiser_owner(), "denoiser", None) is not None,
                "settings": {k: v for k, v in self.settings().items() if isinstance(v, (int, float, str, bool))},
                "request_settings": self.request_settings()}

    def denoiser_owner(self) -> Any:
        """The object holding a prompt denoiser hook, if the pipeline has one (HierSpeech++ TTS/VC)."""
        return getattr(self.pipeline, "engine", None) or getattr(self.pipeline, "converter", None)

    def variant(self, changes: Mapping[str, Any]) -> TaskPipeline:
        """The pipeline with a request's settings (422 for an unknown, read-only or invalid one)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        allowed = self.request_settings()
        for key in changes:
            if key not in allowed:
                raise ApiError(422, f"model {self.name!r} has no request setting {key!r} "
                                    f"(it takes: {', '.join(allowed) or 'none'})", key)
        try:
            variant = self.pipeline.with_settings(changes)
            variant.output_rate()
        except (ValueError, TypeError) as err:  # ConfigError is a ValueError
            raise ApiError(422, " ".join(str(err).split()), next(iter(changes), None)) from err
        return variant


def warm_up(model: ServedModel) -> float:
    """Run one small request of ``model``'s task (a short sentence, or a second of a synthetic voiced signal) and
    throw the result away; returns the seconds it took.

    A model's first call pays one-off costs: numba kernels loaded from their on-disk cache, oneDNN building its
    kernels, lazily loaded parts (SpeechSR-48k on 3.25 s: a cold first request 0.80 s, warmed 0.41-0.44 s;
    serving/README.md). Done at start-up, the first user request does not pay them.
    """
    from models.base.tasks import Audio
    from models.base.waveforms import synthetic_voice

    voiced = Audio(synthetic_voice(16000), 16000)
    pipeline, caps = model.pipeline, model.pipeline.capabilities
    start = time.perf_counter()
    if model.task == "tts":
        text = "Hello, this warms the model up."
        pipeline.synthesize([text], prompts=[voiced] if caps.audio_prompt else None,
                            prompt_texts=[text] if caps.prompt_text else None,
                            speakers=[caps.speakers[0]] if caps.speakers else None, seed=0)
    elif model.task == "vc":
        pipeline.convert([voiced], [voiced], seed=0)
    elif model.task == "sr":
        pipeline.upsample([voiced], seed=0)
    return time.perf_counter() - start


class ModelRegistry:
    """Loads every configured model (any failure stops the start-up with its one-line reason) and, with
    ``warm``, runs :func:`warm_up` on each (a model whose warm-up fails is still served: the reason is logged)."""

    def __init__(self, entries: Mapping[str, ModelEntry], device: str = "cpu", warm: bool = False):
        self.models: Dict[str, ServedModel] = {}
        for name, entry in entries.items():
            pipeline = load_pipeline(model_spec(entry), entry.overrides, device=device)
            task = getattr(pipeline, "task", "") or next(iter(pipeline.capabilities.tasks))
            self.models[name] = ServedModel(name, pipeline, task)
            log.info("loaded model %r (%s, %d Hz)", name, task, pipeline.sample_rate)
            if warm:
                try:
                    log.info("warmed up model %r in %.2f s", name, warm_up(self.models[name]))
                except Exception as err:  # noqa: BLE001 - only an optimisation; requests report their own errors
                    log.warning("model %r: warm-up failed (%s: %s); its first request pays the one-off costs",
                                name, type(err).__name__, " ".join(str(err).split()))

    def names(self, task: Optional[str] = None) -> List[str]:
        return [n for n, m in self.models.items() if task is None or m.task == task]

    def get(self, name: Optional[str], task: str) -> ServedModel:
        """The model ``name`` for ``task``; with no name, the only model of that task."""
        candidates = self.names(task)
        if not name:
            if len(candidates) == 1:
                return self.models[candidates[0]]
            raise ApiError(422 if candidates else 404,
                           f"give 'model': one of {', '.join(candidates)}" if candidates
                           else f"no {task} model is served here", "model")
        model = self.models.get(name)
        if model is None:
            raise ApiError(404, f"model {name!r} not found; served {task} models: {', '.join(candidates) or 'none'}",
                           "model")
        if model.task != task:
            raise ApiError(422, f"model {name!r} is a {model.task} model, not {task}; served {task} models: "
                                f"{', '.join(candidates) or 'none'}", "model")
        return model
