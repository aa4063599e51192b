"""Batch runners over the task-level API: one per task, for every pipeline of that task.

``echelon-infer --pipeline SPEC_OR_DIR`` builds the pipeline (:mod:`models.base.pipeline`) and drives it with
the runner of its task; a model registers a runner of its own (``@register("inference", NAME)``, a subclass of
these) only for extra inputs outside the contract (VITS: conversion between its training speakers).

* TTS: ``--text T [T ...]`` / ``--text_file`` (``id|text`` or plain lines) / ``--jobs`` (JSONL ``{"id",
  "text", "speaker"?, "prompt"?, "prompt_text"?}``); ``--speaker``, ``--prompt``, ``--prompt_text`` apply to
  items that do not set their own. Plain texts are named ``tts_0000``, ``tts_0001``, ... (their index).
* VC: ``--source``/``--prompt`` (one prompt for all, or one per source) and ``--pairs`` (TSV
  ``source<TAB>prompt``); outputs ``<source stem>_to_<prompt stem>.wav``.
* SR: ``--inputs``; outputs ``<stem>.wav`` (the input's id, so ``echelon-evaluate`` pairs them with a manifest);
  an input at another rate than the model's, or with several channels, is converted with a warning naming it.

Every setting of the pipeline's settings dataclass is also an option (``--noise_scale 0.5`` is
``--set infer.noise_scale=0.5``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from models.base.inference import BaseInference, InferenceError, Item, file_item_ids, file_items
from models.base.tasks import Audio, TaskPipeline, TextToSpeech, VoiceConversion
from utils.wording import plural

log = logging.getLogger(__name__)

SETTINGS_DEST = "infer__"


# ---------------------------------------------------------------------- settings as options
def add_settings_arguments(parser: argparse.ArgumentParser, settings_class: type) -> None:
    """One ``--NAME VALUE`` option per settings field (values parsed like ``--set`` values)."""
    group = parser.add_argument_group("inference settings (same as --set infer.NAME=VALUE)")
    hints = typing.get_type_hints(settings_class)
    for f in dataclasses.fields(settings_class):
        default = f.default if f.default is not dataclasses.MISSING else "(computed)"
        kind = getattr(hints[f.name], "__name__", str(hints[f.name]).replace("typing.", ""))
        flag = hints[f.name] is bool  # --drop_unspeakable alone means true
        group.add_argument(f"--{f.name}", dest=SETTINGS_DEST + f.name, default=None, metavar=kind.upper(),
                           nargs="?" if flag else None, const="true" if flag else None, help=f"default {default}")


def settings_overrides(args: argparse.Namespace) -> List[str]:
    """``--NAME VALUE`` settings options as dotted overrides (applied after ``--set``, so they win)."""
    return [f"infer.{key[len(SETTINGS_DEST):]}={value}" for key, value in vars(args).items()
            if key.startswith(SETTINGS_DEST) and value is not None]


def read_jsonl(path: str | Path, required: Tuple[str, ...]) -> List[dict]:
    """A jobs file through the one JSONL reader (:func:`processors.data.manifest.read_jsonl`: relative ``path``
    and ``prompt`` values resolve against the file's folder); a problem is an :class:`InferenceError`."""
    from processors.data.manifest import ManifestError, read_jsonl as read_rows

    try:
        return read_rows(path, required)
    except ManifestError as err:
        raise InferenceError(f"jobs {err}" if str(err).startswith("file not found") else str(err)) from None


class TaskInference(BaseInference):
    """A runner around a task pipeline (``self.pipeline``)."""

    task = ""

    def __init__(self, pipeline: TaskPipeline, device: str = "cpu"):
        super().__init__(getattr(pipeline, "settings", None), {}, device)
        self.pipeline = pipeline

    @property
    def base_seed(self) -> int:
        return self.pipeline.seed_or_default(None)


# ---------------------------------------------------------------------- TTS
def require_file(path: str | Path, what: str) -> None:
    """:class:`InferenceError` ``"<what> not found: <path>"`` unless ``path`` is a file (``-``: standard input)."""
    if str(path) != "-" and not Path(path).is_file():
        raise InferenceError(f"{what} not found: {path}")


def read_text_lines(path: str) -> List[str]:
    """Non-empty lines of a UTF-8 text file, or of standard input for ``-``."""
    if path == "-":
        return [line for line in sys.stdin.read().splitlines() if line.strip()]
    require_file(path, "text file")
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def check_one_text_input(args: argparse.Namespace) -> None:
    """At most one of ``--text``, ``--text_file``, ``--jobs``: merged silently they would number and name
    outputs in a surprising way."""
    given = [flag for flag, value in (("--text", args.text), ("--text_file", args.text_file),
                                      ("--jobs", args.jobs)) if value]
    if len(given) > 1:
        raise InferenceError(f"give one of --text, --text_file, --jobs (got {' and '.join(given)})")


class TextToSpeechInference(TaskInference):
    task = "tts"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("text-to-speech inputs (one of --text, --text_file, --jobs)")
        group.add_argument("--text", nargs="+", action="extend", default=[], help="texts (one output each)")
        group.add_argument("--text_file", help="UTF-8 file ('-': standard input): one text per line, 'id|text' or "
                                               "plain text")
        group.add_argument("--jobs", help='JSONL: {"id", "text", "speaker"?, "prompt"?, "prompt_text"?} per line')
        group.add_argument("--speaker", help="speaker name or id (multi-speaker models)")
        group.add_argument("--prompt", help="voice prompt wav (zero-shot models only), for items without their own")
        group.add_argument("--prompt_text", help="the prompt's transcript (models that need it)")

    @classmethod
    def check_args(cls, args: argparse.Namespace) -> None:
        super().check_args(args)
        check_one_text_input(args)
        if args.text_file:
            require_file(args.text_file, "text file")
        if args.jobs:
            require_file(args.jobs, "jobs file")

    def text_jobs(self, args: argparse.Namespace) -> List[dict]:
        check_one_text_input(args)
        jobs = [{"text": t} for t in args.text]
        if args.text_file:
            for line in read_text_lines(args.text_file):
                uid, sep, text = line.partition("|")
                jobs.append({"id": uid.strip(), "text": text.strip()} if sep else {"text": line.strip()})
        if args.jobs:
            jobs += [j for j in read_jsonl(args.jobs, ("id",)) if "text" in j]
        return jobs

    def check_voice_options(self, args: argparse.Namespace) -> None:
        """Options this voice cannot use are errors, not silently dropped."""
        caps, name = self.pipeline.capabilities, self.pipeline.display_name  # the model, not a Python class
        if args.prompt and not caps.audio_prompt:
            hint = f" (its speakers: {', '.join(map(str, caps.speakers[:5]))}; use --speaker)" if caps.speakers else ""
            raise InferenceError(f"--prompt: {name} takes no voice prompt{hint}")
        if args.prompt_text and not caps.prompt_text:
            raise InferenceError(f"--prompt_text: {name} takes no prompt transcript")

    def items(self, args: argparse.Namespace) -> List[Item]:
        self.check_voice_options(args)
        items = []
        for index, job in enumerate(self.text_jobs(args)):
            data = {"text": job["text"], "speaker": job.get("speaker", args.speaker),
                    "prompt": job.get("prompt", args.prompt), "prompt_text": job.get("prompt_text", args.prompt_text),
                    "index": index, "job": job}  # the whole job: runners read their own extra fields
            uid = str(job["id"]) if "id" in job else f"tts_{index:04d}"
            items.append(Item(uid, data, label=str(job["text"])[:80]))
        return items

    def process(self, item: Item) -> Audio:
        d = item.data
        pipeline: TextToSpeech = self.pipeline
        caps = pipeline.capabilities
        if d["prompt"] is None and caps.audio_prompt and not caps.speakers:
            raise InferenceError("this zero-shot TTS needs a voice prompt: give --prompt (or 'prompt' in --jobs)")
        return pipeline.synthesize(
            [d["text"]],
            prompts=[d["prompt"]] if d["prompt"] is not None and caps.audio_prompt else None,
            prompt_texts=[d["prompt_text"]] if d["prompt_text"] is not None and caps.prompt_text else None,
            speakers=[d["speaker"]] if d["speaker"] is not None else None,
            seed=pipeline.item_seed(self.base_seed, d["index"]),
        )[0]


# ---------------------------------------------------------------------- VC
def read_pairs(path: str | Path) -> List[Tuple[str, str]]:
    path = Path(path)
    require_file(path, "pairs file")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            fields = line.split("\t")
            if len(fields) != 2:
                raise InferenceError(f"{path}:{number}: expected 'source<TAB>prompt', got {line!r}")
            pairs.append((fields[0].strip(), fields[1].strip()))
    return pairs


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("voice-conversion inputs")
    group.add_argument("--source", nargs="+", action="extend", default=[], help="source wavs (the words)")
    group.add_argument("--prompt", nargs="+", action="extend", default=[],
                       help="prompt wavs (the voice): one for all sources, or one per source")
    group.add_argument("--pairs", help="TSV file of 'source<TAB>prompt' lines (adds to --source/--prompt)")


def pairs_from_args(args: argparse.Namespace) -> List[Tuple[str, str]]:
    sources, prompts = list(args.source), list(args.prompt)
    if sources and len(prompts) == 1:
        prompts = prompts * len(sources)
    if len(sources) != len(prompts):
        raise InferenceError(f"{plural(len(sources), '--source file')} but {plural(len(prompts), '--prompt file')}")
    pairs = list(zip(sources, prompts))
    if args.pairs:
        pairs += read_pairs(args.pairs)
    return pairs


def pair_items(pairs: List[Tuple[str, str]]) -> List[Item]:
    items = []
    for index, ((src, prm), (s_id, s_alt), (p_id, _)) in enumerate(
            zip(pairs, file_item_ids([s for s, _ in pairs]), file_item_ids([p for _, p in pairs]))):
        items.append(Item(f"{s_id}_to_{p_id}", {"source": src, "prompt": prm, "index": index},
                          label=f"{src} -> {prm}", alternate_id=f"{s_alt}_to_{p_id}"))
    return items


class VoiceConversionInference(TaskInference):
    """Pairs go to the pipeline ``settings.batch_size`` at a time when its item seeds allow it (a batch from item
    ``k`` called with ``item_seed(s, k)`` must give each item the seed it would get alone)."""

    task = "vc"

    def __init__(self, pipeline: TaskPipeline, device: str = "cpu"):
        super().__init__(pipeline, device)
        self.batch_size = max(1, int(getattr(pipeline.settings, "batch_size", 1)))

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_pair_arguments(parser)

    @classmethod
    def check_args(cls, args: argparse.Namespace) -> None:
        super().check_args(args)
        pairs_from_args(args)  # counts that do not match, a missing or malformed pairs file

    def items(self, args: argparse.Namespace) -> List[Item]:
        return pair_items(pairs_from_args(args))

    def process(self, item: Item) -> Audio:
        return self.process_batch([item])[0]

    def process_batch(self, items: Sequence[Item]) -> List[Audio]:
        pipeline: VoiceConversion = self.pipeline
        first = items[0].data["index"]
        seed = pipeline.item_seed(self.base_seed, first)
        if len(items) > 1 and any(pipeline.item_seed(seed, j) != pipeline.item_seed(self.base_seed, first + j)
                                  for j in range(len(items))):
            return [self.process(item) for item in items]
        rate = getattr(pipeline, "input_rate", None) or getattr(pipeline, "sample_rate", None)
        for item in items:
            for role in ("source", "prompt"):
                warn_converted_input(item.id, item.data[role], rate, role)
        return pipeline.convert([i.data["source"] for i in items], [i.data["prompt"] for i in items], seed=seed)


# ---------------------------------------------------------------------- SR
class SuperResolutionInference(TaskInference):
    task = "sr"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("super-resolution inputs")
        group.add_argument("--inputs", nargs="+", action="extend", default=[], help="audio files (any rate)")

    def items(self, args: argparse.Namespace) -> List[Item]:
        return file_items(args.inputs)

    def process(self, item: Item) -> Audio:
        warn_converted_input(item.id, item.data, getattr(self.pipeline, "input_rate", None))
        return self.pipeline.upsample([item.data])[0]


def warn_converted_input(item_id: str, path: str | Path, rate: Optional[int], role: str = "") -> None:
    """Say (naming the item, and the input's ``role`` when it has several) when an input file is downmixed to mono
    or resampled to the model's ``rate``."""
    from processors.audio import audio_info

    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return  # not a file here: reading it reports that, in the item's own error
    info = audio_info(path)
    changes = [f"{info.channels} channels downmixed to mono"] if info.channels > 1 else []
    if rate and info.samplerate != rate:
        changes.append(f"resampled from {info.samplerate} Hz to the model's {rate} Hz")
    if changes:
        log.warning("%s (%s%s): %s", item_id, f"{role} " if role else "", path, ", ".join(changes))


TASK_RUNNERS = {"tts": TextToSpeechInference, "vc": VoiceConversionInference, "sr": SuperResolutionInference}


def runner_for(pipeline_cls: Any, registered: Optional[type] = None) -> type:
    """The runner of a pipeline: a registered one (for extra inputs), else its task's."""
    if registered is not None and issubclass(registered, TaskInference):
        return registered
    try:
        return TASK_RUNNERS[pipeline_cls.task]
    except KeyError:
        raise InferenceError(f"pipeline {pipeline_cls.__name__} declares an unknown task {pipeline_cls.task!r}") from None
