"""The served pipelines by name, loaded once at start-up through ``models.base.pipeline.load_pipeline``.

A request picks a model by name only (a path in a request is just an unknown name: 404). Per-request settings
go through :meth:`models.base.tasks.TaskPipeline.with_settings` on a copy; only the settings the shared
vocabulary marks as request settings (``models/base/infer_settings.json5``: numbers that steer sampling and
output rate, never paths or memory/size knobs) can be set by a request, each checked there.

Voices: OpenAI-compatible apps send OpenAI's voice names (the SDK requires one). A model with one voice (or a
zero-shot model, whose voice is its prompt) takes any of them; a multi-speaker model takes its speakers' names
or ids, and OpenAI's names where ``serve.json5`` maps them to speakers (``voices: {alloy: "p225"}``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from models.base.infer_settings import by_role, request_settings, vocabulary
from models.base.pipeline import load_resolved, resolve
from models.base.tasks import TaskPipeline
from serving.config import ModelEntry
from serving.errors import ApiError
from utils.config import ConfigError

log = logging.getLogger("echelon.serve")

# the voice names of OpenAI's speech API (what its SDK and the apps built on it send)
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
                 "marin", "cedar")
SINGLE_VOICE_NAMES = ("default",)
INSTRUCTIONS_NOTE = "accepted for OpenAI compatibility and ignored: the voice is set by 'voice' and the settings"


@dataclass
class ServedModel:
    name: str
    pipeline: TaskPipeline
    task: str  # "tts" | "vc" | "sr"
    voices: Dict[str, str] = field(default_factory=dict)  # configured voice name -> speaker

    def settings(self) -> Dict[str, Any]:
        s = self.pipeline.settings
        return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)} if dataclasses.is_dataclass(s) else {}

    def request_settings(self) -> List[str]:
        s = self.pipeline.settings
        return [setting.name for setting in request_settings(type(s))] if dataclasses.is_dataclass(s) else []

    def has(self, capability: str) -> bool:
        """Whether the model has an optional part a setting ``needs`` (a prompt denoiser hook)."""
        owner = getattr(self.pipeline, "engine", None) or getattr(self.pipeline, "converter", None)
        return getattr(owner, capability, None) is not None

    def speed_setting(self) -> Optional[str]:
        """The setting the request's ``speed`` divides (the vocabulary's duration scale), if the model has it."""
        name = by_role("duration_scale").name
        return name if name in self.request_settings() else None

    def describe(self) -> Dict[str, Any]:
        caps = self.pipeline.capabilities
        out = {"id": self.name, "object": "model", "owned_by": "echelon", "task": self.task,
               "sample_rate": int(self.pipeline.sample_rate), "speakers": list(caps.speakers),
               "audio_prompt": bool(caps.audio_prompt), "prompt_text": bool(caps.prompt_text),
               "denoiser": self.has("denoiser"),
               "settings": {k: v for k, v in self.settings().items() if isinstance(v, (int, float, str, bool))},
               "request_settings": self.request_settings()}
        if self.task == "tts":
            out.update(voices=self.voice_names(), voice_map=dict(self.voices), speed=self.speed_setting(),
                       instructions=INSTRUCTIONS_NOTE)
        return out

    # ------------------------------------------------------------------ voices
    def voice_names(self) -> List[str]:
        """The voice names a request may send."""
        speakers = list(self.pipeline.capabilities.speakers)
        return [*speakers, *self.voices] if speakers else [*SINGLE_VOICE_NAMES, *OPENAI_VOICES]

    def speaker(self, voice: Union[str, int, None]) -> Union[str, int, None]:
        """A request's ``voice`` -> the speaker to synthesize with (None: the model's one voice), or 404/422."""
        speakers = list(self.pipeline.capabilities.speakers)
        if not speakers:
            if voice is None or str(voice) in ("", self.name, *SINGLE_VOICE_NAMES, *OPENAI_VOICES):
                return None
            raise ApiError(404, f"voice {voice!r} not found: model {self.name!r} has one voice; send 'default' or "
                                f"any of OpenAI's voice names ({', '.join(OPENAI_VOICES)})", "voice")
        listed = ", ".join(speakers[:20]) + (f" and {len(speakers) - 20} more" if len(speakers) > 20 else "")
        if voice is None or voice == "":
            raise ApiError(422, f"model {self.name!r} has {len(speakers)} voices: give 'voice' (one of {listed})",
                           "voice")
        voice = self.voices.get(str(voice), voice)
        if str(voice) in speakers:
            return str(voice)
        if isinstance(voice, int) or str(voice).isdigit():
            if 0 <= int(voice) < len(speakers):
                return int(voice)
        mapped = f"; mapped names: {', '.join(self.voices)}" if self.voices else ""
        if str(voice) in OPENAI_VOICES:
            raise ApiError(404, f"voice {voice!r} is one of OpenAI's voice names, which model {self.name!r} does not "
                                f"map to its speakers (map them under models.{self.name}.voices in serve.json5); its "
                                f"voices: {listed}{mapped}", "voice")
        raise ApiError(404, f"voice {voice!r} not found; model {self.name!r} has: {listed}{mapped}", "voice")

    # ------------------------------------------------------------------ settings
    def check_changes(self, changes: Mapping[str, Any]) -> None:
        """Each requested setting: one the model has, valid (the vocabulary's check and a request's maximum), and
        possible for this model (a setting that ``needs`` a part the model lacks stays at its minimum)."""
        allowed = self.request_settings()
        for key, value in changes.items():
            if key not in allowed:
                raise ApiError(422, f"model {self.name!r} has no request setting {key!r} "
                                    f"(it takes: {', '.join(allowed) or 'none'})", key)
            setting = vocabulary()[key]
            try:
                setting.check_request(value)
            except ConfigError as err:
                raise ApiError(422, str(err), key) from err
            if setting.needs and not self.has(setting.needs) and value != (setting.minimum or 0):
                raise ApiError(422, f"model {self.name!r} has no {setting.needs}, so {key} must stay "
                                    f"{setting.minimum or 0:g}", key)

    def variant(self, changes: Mapping[str, Any], speed: float = 1.0) -> TaskPipeline:
        """The pipeline with a request's settings and ``speed`` (422 for an unknown, invalid or impossible one)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        self.check_changes(changes)
        if speed != 1.0:
            rate = self.speed_setting()
            if rate is None:
                raise ApiError(422, f"model {self.name!r} cannot change its speaking rate: send speed 1.0", "speed")
            changes[rate] = changes.get(rate, self.settings()[rate]) / speed
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


def check_voice_map(name: str, pipeline: TaskPipeline, voices: Mapping[str, str]) -> Dict[str, str]:
    """``models.NAME.voices`` of serve.json5: each name maps to a speaker of a multi-speaker model."""
    speakers = list(pipeline.capabilities.speakers)
    if voices and not speakers:
        raise ConfigError(f"models.{name}.voices: model {name!r} has one voice and takes any voice name already")
    for alias, speaker in voices.items():
        if str(speaker) not in speakers:
            raise ConfigError(f"models.{name}.voices.{alias}: {speaker!r} is not a speaker of model {name!r} "
                              f"({', '.join(speakers[:20])})")
    return dict(voices)


class ModelRegistry:
    """Loads every configured model (any failure stops the start-up with its one-line reason) and, with
    ``warm``, runs :func:`warm_up` on each (a model whose warm-up fails is still served: the reason is logged)."""

    def __init__(self, entries: Mapping[str, ModelEntry], device: str = "cpu", warm: bool = False):
        self.models: Dict[str, ServedModel] = {}
        for name, entry in entries.items():
            pipeline = load_resolved(resolve(entry.pipeline or None, entry.model_type or None,
                                             entry.components.items(), entry.overrides), device, entry.backend or None)
            pipeline.name = name  # messages name the served model
            task = getattr(pipeline, "task", "") or next(iter(pipeline.capabilities.tasks))
            self.models[name] = ServedModel(name, pipeline, task, check_voice_map(name, pipeline, entry.voices))
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
