"""Task-level APIs: what every model family offers for a task, whatever its checkpoints look like.

The benchmark, the demo and user code drive every system through these methods only::

    tts = load_pipeline("tts.json5")                 # models/base/pipeline.py (specs, checkpoint dirs)
    out = tts.synthesize(["Hello there."], prompts=["ref.wav"], prompt_texts=["Reference words."])
    out[0].waveform, out[0].sample_rate               # float32 mono (T,), Hz

* :class:`TextToSpeech` — ``synthesize(texts, prompts=None, prompt_texts=None, speakers=None, seed=None)``.
  ``capabilities`` says what the system can use: a zero-shot audio prompt, the prompt's transcript
  (VALL-E continuation/cross-sentence needs it), named speakers. ``synthesize_stream(text, ...)`` yields one
  text's audio in chunks (sentence by sentence, windows of long sentences; ``models/base/streaming.py``).
* :class:`VoiceConversion` — ``convert(sources, prompts, seed=None)``.
* :class:`SpeechSuperResolution` — ``upsample(waveforms, seed=None)``.

Inputs may be paths or :class:`Audio`; implementations resample prompts to the rate they need. Every method
returns one :class:`Audio` per input in input order; a bad input raises an error naming it (batch CLIs catch
it per item, list it and go on).

Randomness: ``seed=None`` means ``settings.seed``. Item ``i`` of a call depends only on the call's seed and
``i``; a one-item call with ``seed=pipeline.item_seed(s, i)`` reproduces it (batch runners use this, so a
run's item ``i`` is the same whether items go one by one or together). Long inputs are processed in
bounded pieces (sentences for TTS, chunks for VC/SR), so memory does not grow with their length. Every TTS
family speaks through the one per-text loop of :class:`models.base.sentence_tts.SentenceTTS` (splitting,
pauses, seeds, prompt/speaker checks) and implements only ``synthesize_piece``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np


@dataclass
class Audio:
    """A mono waveform and its sample rate. ``waveform``: float32 (T,)."""

    waveform: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        self.waveform = np.asarray(self.waveform, dtype=np.float32).reshape(-1)
        if int(self.sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        self.sample_rate = int(self.sample_rate)

    @property
    def seconds(self) -> float:
        return self.waveform.shape[0] / self.sample_rate


AudioInput = Union[str, Path, Audio]


def load_input(item: AudioInput, sample_rate: Optional[int] = None) -> Audio:
    """Read a path (or pass an :class:`Audio` through), resampled to ``sample_rate`` when given."""
    from processors.audio import audio_info, load_audio, resample

    if isinstance(item, Audio):
        if sample_rate is None or sample_rate == item.sample_rate:
            return item
        return Audio(resample(item.waveform, item.sample_rate, sample_rate), sample_rate)
    if not isinstance(item, (str, Path)):
        raise TypeError(f"audio inputs are paths or Audio(waveform, sample_rate), got {type(item).__name__}")
    rate = sample_rate if sample_rate is not None else audio_info(item).samplerate
    return Audio(load_audio(item, rate), rate)


def per_text(values: Optional[Sequence[Any]], texts: Sequence[str], what: str = "speakers") -> List[Any]:
    """``values`` (speakers, prompts, ...) aligned with ``texts``: None for each when not given, one for all, or
    one per text."""
    chosen = list(values) if values else [None] * len(texts)
    if len(chosen) == 1:
        chosen = chosen * len(texts)
    if len(chosen) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(chosen)} {what} (give one or one per text)")
    return chosen


@dataclass(frozen=True)
class Capabilities:
    """What a pipeline can take. ``tasks`` ⊆ {"tts", "vc", "sr"}."""

    tasks: FrozenSet[str]
    audio_prompt: bool = False  # zero-shot: a reference recording sets the voice
    prompt_text: bool = False  # needs the prompt's transcript (codec language models)
    speakers: Sequence[str] = field(default_factory=tuple)  # named speakers of a multi-speaker model
    continuation: bool = False  # can continue a prompt's audio (VALL-E's 3 s prefix protocol)


class TaskPipeline(abc.ABC):
    """Common part: one output rate, the inference settings and a capability description."""

    sample_rate: int
    settings: object = None  # the pipeline's settings dataclass (validated ``infer`` section)
    name: str = ""  # what messages call it: the served model, spec or checkpoint directory (set when built)
    # True when calls may run at the same time in several threads: every random draw comes from the call's own
    # torch.Generator (never torch's process-global one) and nothing else is shared mutably; a server then runs
    # several requests of the model at once (serving/workers.py), else one at a time
    concurrent_calls: bool = False

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    def item_seed(self, seed: int, index: int) -> int:
        """The seed of a one-item call that reproduces item ``index`` of a call with ``seed``."""
        return seed + index

    def seed_or_default(self, seed: Optional[int]) -> int:
        """A call's seed (checked like the ``infer`` section's), or the settings' one when it gives none."""
        from models.base.infer_settings import by_role

        seeds = by_role("seed")
        if seed is None:
            return int(getattr(self.settings, seeds.name, 0))
        seeds.check(seed, prefix="")
        return int(seed)

    @property
    def display_name(self) -> str:
        """``voice 'joe'`` / ``model 'hsp'`` for messages (never a Python class name)."""
        return f"model {self.name!r}" if self.name else "this model"

    def with_settings(self, changes: Mapping[str, Any]) -> "TaskPipeline":
        """A copy that shares the loaded models but uses ``settings`` with ``changes`` (validated like the
        ``infer`` section: an unknown key names the closest one). The pipeline itself is left as it was, so
        callers with different settings (server requests) never see each other's."""
        import copy
        import dataclasses

        from utils.config import validate

        if not changes:
            return self
        current = {f.name: getattr(self.settings, f.name) for f in dataclasses.fields(self.settings) if f.init}
        variant = copy.copy(self)
        variant.settings = validate({**current, **dict(changes)}, type(self.settings), "infer")
        variant.sample_rate = variant.output_rate()
        return variant

    def output_rate(self) -> int:
        """The rate this pipeline's current settings produce (pipelines with a rate setting override this)."""
        return self.sample_rate


class TextToSpeech(TaskPipeline):
    @abc.abstractmethod
    def synthesize(
        self,
        texts: Sequence[str],
        prompts: Optional[Sequence[AudioInput]] = None,
        prompt_texts: Optional[Sequence[str]] = None,
        speakers: Optional[Sequence[Union[int, str]]] = None,
        seed: Optional[int] = None,
    ) -> List[Audio]:
        """One waveform per text. ``prompts``/``prompt_texts``/``speakers`` align with ``texts``."""

    def synthesize_stream(self, text: str, prompt: Optional[AudioInput] = None, prompt_text: Optional[str] = None,
                          speaker: Optional[Union[int, str]] = None, seed: Optional[int] = None) -> Iterator[Audio]:
        """One text's audio as chunks in order; concatenated they equal ``synthesize([text], ...)[0]`` with the
        same seed. This default yields that one-shot result as a single chunk; pipelines that can speak
        sentence by sentence override it (``models/base/streaming.py``)."""
        yield self.synthesize([text], None if prompt is None else [prompt],
                              None if prompt_text is None else [prompt_text],
                              None if speaker is None else [speaker], seed)[0]


class VoiceConversion(TaskPipeline):
    @abc.abstractmethod
    def convert(self, sources: Sequence[AudioInput], prompts: Sequence[AudioInput], seed: Optional[int] = None) -> List[Audio]:
        """Say each source's words in the voice of the matching prompt."""


class SpeechSuperResolution(TaskPipeline):
    @abc.abstractmethod
    def upsample(self, waveforms: Sequence[AudioInput], seed: Optional[int] = None) -> List[Audio]:
        """Raise each input to ``self.sample_rate``."""
