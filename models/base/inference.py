"""BaseInference: the one batch loop behind ``echelon-infer`` and ``bins/vc.py``.

A runner turns command-line options into :class:`Item` s (``items``) and one item into audio (``process``);
:meth:`BaseInference.run` does the rest, the same way for every model:

* output names are planned before anything is written: ``<output_dir>/<item id>.wav``; two inputs that would
  share a name (``a.flac`` and ``a.mp3``) get their extension added (``a_flac``, ``a_mp3``); names that still
  collide, or outputs that already exist without ``--overwrite``, stop the run before it writes anything;
* each item runs on its own: an item that fails (unreadable audio, text
  the front end cannot read, an input too short for the model) is listed and the run goes on; what was
  written stays;
* the failures go to ``<output_dir>/bad_items_<run id>.tsv`` (``id<TAB>input<TAB>error``), written atomically,
  one file per run, so earlier lists are never overwritten;
* :class:`RunResult` counts what was written, failed, kept and not started; the CLIs print the first five
  failures (``id: reason``) and ``N written, M failed: see <list>`` as their last line and exit 1 when anything
  failed (``--allow_failures``: exit 0);
* ``--skip_existing`` keeps outputs that exist (written atomically, so complete) and does the rest;
  SIGINT/SIGTERM stop after the current item: ``N written, M failed, K not started: rerun with
  --skip_existing``, exit 130/143 (:mod:`utils.interrupt`); progress: :mod:`utils.progress` (``--quiet``).

Errors that concern the whole run (a bad setting, a missing denoiser, a model/feature width mismatch) are
:class:`InferenceError`: the run stops with one line, before any item is processed.

Runners::

    @register("inference", "<my_model>")        # a checkpoint whose model_type has no task pipeline
    class MyInference(BaseInference):
        @classmethod
        def from_checkpoint(cls, ckpt_dir, device="cpu") -> "MyInference"
        @staticmethod
        def add_arguments(parser)                 # the runner's own inputs
        def items(self, args) -> list[Item]
        def process(self, item) -> tasks.Audio

Models with a task-level pipeline (:mod:`models.base.pipeline`) need no runner of their own: the task runners
of :mod:`models.base.task_inference` drive them.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from models.base import checkpoint as ckpt
from models.base.tasks import Audio, Capabilities, TaskPipeline
from utils.config import validate
from utils.batch import add_rerun_arguments, exit_status, summary_lines
from utils.interrupt import StopOnSignal
from utils.io import OutputPathError, atomic_write_text, check_writable_dir
from utils.progress import Progress
from utils.wording import agree, plural

log = logging.getLogger(__name__)


class InferenceError(ValueError):
    """A problem with a whole inference run (settings, models, output folder); the message names the culprit."""


# What one item may raise without stopping the run (bad audio and text are ValueErrors; unreadable files
# OSErrors; inputs a network cannot take, e.g. shorter than its receptive field, RuntimeErrors).
ITEM_ERRORS: Tuple[type, ...] = (ValueError, OSError, RuntimeError)


@dataclass
class Item:
    """One unit of work: ``id`` names the output file and the bad-list row; ``label`` the input(s)."""

    id: str
    data: Any
    label: str = ""
    alternate_id: Optional[str] = None  # used when ``id`` collides with another item's (e.g. stem + extension)


@dataclass
class RunResult:
    written: List[Path] = field(default_factory=list)
    failed: List[Tuple[str, str, str]] = field(default_factory=list)  # (id, input, error)
    bad_list: Optional[Path] = None
    kept: int = 0  # outputs already there, kept (--skip_existing)
    not_started: int = 0  # items left when a signal stopped the run
    stopped: Optional[int] = None  # exit status of a run stopped by SIGINT/SIGTERM (130/143)

    def summary(self, verb: str = "written") -> str:
        """The first five failures as ``id: reason`` and the summary line (see :mod:`utils.batch`)."""
        return summary_lines(len(self.written), [(uid, err) for uid, _, err in self.failed], self.bad_list,
                             verb=verb, kept=self.kept, not_started=self.not_started,
                             stopped=self.stopped is not None)

    def exit_code(self, allow_failures: bool = False) -> int:
        return exit_status(len(self.failed), allow_failures, self.stopped)


def run_id() -> str:
    """A per-run tag for file names: local time to the second + process id (unique on one machine)."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


def file_item_ids(paths: Sequence[str | Path]) -> List[Tuple[str, str]]:
    """(id, alternate id) per input file: the stem, and the stem + extension for when stems collide."""
    out = []
    for path in paths:
        path = Path(path)
        out.append((path.stem, path.stem + ("_" + path.suffix.lstrip(".") if path.suffix else "")))
    return out


def file_items(paths: Sequence[str | Path], tag: str = "") -> List[Item]:
    """One :class:`Item` per input file: id = stem (+ ``tag``), data = the path."""
    return [Item(uid + tag, Path(path), str(path), alt + tag) for path, (uid, alt) in zip(paths, file_item_ids(paths))]


def plan_outputs(items: Sequence[Item], out_dir: Path, overwrite: bool, suffix: str = ".wav",
                 skip_existing: bool = False) -> List[Path]:
    """One distinct output path per item, or :class:`InferenceError` before anything is written.

    Outputs that already exist stop the run unless ``overwrite`` (replace them) or ``skip_existing`` (keep
    them: outputs are written atomically, so an existing file is complete).
    """
    if overwrite and skip_existing:
        raise InferenceError("--overwrite replaces existing outputs and --skip_existing keeps them: give one")
    counts: Dict[str, int] = {}
    for item in items:
        counts[item.id] = counts.get(item.id, 0) + 1
    names = [item.alternate_id if counts[item.id] > 1 and item.alternate_id else item.id for item in items]
    seen: Dict[str, Item] = {}
    for name, item in zip(names, items):
        if name in seen:
            raise InferenceError(f"two inputs would both be written to {out_dir / (name + suffix)}: "
                                 f"{seen[name].label or seen[name].id!s} and {item.label or item.id!s} "
                                 "(give distinct ids or file names)")
        seen[name] = item
    paths = [out_dir / (name + suffix) for name in names]
    for path, item in zip(paths, items):
        # an input file read from the output folder (e.g. SR's <stem>.wav next to <stem>.wav) is never replaced
        if isinstance(item.data, Path) and path.resolve() == item.data.resolve():
            raise InferenceError(f"the output for {item.data} would replace that input file: "
                                 "write to another --output_dir")
    existing = [p for p in paths if p.exists()]
    if existing and not (overwrite or skip_existing):
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        them = agree(len(existing), "it", "them")
        raise InferenceError(f"{existing[0]}{more} already {agree(len(existing), 'exists', 'exist')}; pass "
                             f"--skip_existing to keep {them} and do the rest, or --overwrite to replace {them}")
    return paths


def check_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` or fail with one line when it cannot be written (a file, no permission)."""
    try:
        check_writable_dir(out_dir)
    except OutputPathError as err:
        raise InferenceError(str(err)) from err


def write_bad_list(out_dir: Path, failed: Sequence[Tuple[str, str, str]]) -> Path:
    """``bad_items_<run id>.tsv`` (a new file per run), written atomically."""
    path = out_dir / f"bad_items_{run_id()}.tsv"
    while path.exists():  # two runs within one second in one process (tests): never replace a list
        path = path.with_name(path.stem + "_1.tsv")
    rows = ["id\tinput\terror"] + ["\t".join(_one_line(v) for v in row) for row in failed]
    return atomic_write_text(path, "\n".join(rows) + "\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of every batch run (output folder, rerun policy, exit code policy, progress)."""
    group = parser.add_argument_group("batch run")
    group.add_argument("--output_dir", required=True, help="where the outputs (and the bad-item list) go")
    add_rerun_arguments(
        group, overwrite="replace output files that already exist",
        skip_existing="keep outputs that already exist (complete: they are written atomically) and do the rest: how "
                      "an interrupted run is finished",
        allow_failures="exit 0 even when some items failed (they are still listed)")


class BaseInference:
    config_class: type | None = None  # the experiment dataclass used to validate the saved config
    batch_size: int = 1  # items handed to process_batch at once

    def __init__(self, config: Any = None, models: Optional[Mapping[str, torch.nn.Module]] = None,
                 device: str | torch.device = "cpu"):
        self.config = config
        self.models = dict(models or {})
        self.device = torch.device(device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load_checkpoint(cls, ckpt_dir: str | Path) -> Tuple[Path, Any, Mapping[str, Any]]:
        """Resolve ``ckpt_dir`` and return (dir, validated config, raw config dict)."""
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        key = getattr(cls, "_registry_key", None)
        raw = ckpt.expect_model_type(path, key[1]) if key else ckpt.read_config(path)
        cfg = validate(raw, cls.config_class) if cls.config_class is not None else raw
        return path, cfg, raw

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str | Path, device: str = "cpu") -> "BaseInference":
        raise NotImplementedError

    # ------------------------------------------------------------------ what a runner defines
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add runner-specific options (inputs, settings)."""

    @classmethod
    def check_args(cls, args: argparse.Namespace) -> None:
        """What can be refused before the model is loaded, so that a bad option costs no load: here the output
        folder (a file, not writable); runners add their inputs (files that do not exist, options that clash)."""
        try:
            check_writable_dir(Path(args.output_dir), "--output_dir", create=False)
        except OutputPathError as err:
            raise InferenceError(str(err)) from err

    def items(self, args: argparse.Namespace) -> List[Item]:
        raise NotImplementedError

    def process(self, item: Item) -> Audio:
        raise NotImplementedError

    def process_batch(self, items: Sequence[Item]) -> List[Audio]:
        """Several items at once (runners with batched models override this); one output per item."""
        return [self.process(item) for item in items]

    # ------------------------------------------------------------------ the loop
    def run(self, args: argparse.Namespace) -> RunResult:
        items = self.items(args)
        if not items:
            raise InferenceError("nothing to do: no inputs given")
        out_dir = Path(args.output_dir)
        check_output_dir(out_dir)
        return self.run_items(items, out_dir, overwrite=getattr(args, "overwrite", False),
                              skip_existing=getattr(args, "skip_existing", False), quiet=getattr(args, "quiet", False))

    def run_items(self, items: Sequence[Item], out_dir: Path, overwrite: bool = False, skip_existing: bool = False,
                  quiet: bool = False) -> RunResult:
        """Every item not already done, ``batch_size`` at a time; SIGINT/SIGTERM stop after the current batch."""
        paths = plan_outputs(items, out_dir, overwrite, skip_existing=skip_existing)
        result = RunResult()
        todo = [(item, path) for item, path in zip(items, paths) if not (skip_existing and path.exists())]
        result.kept = len(items) - len(todo)
        step = max(1, int(self.batch_size))
        with StopOnSignal("the current item") as stop, \
                Progress(len(todo), "infer", unit="items", quiet=quiet) as progress:
            for start in range(0, len(todo), step):
                if stop.requested:
                    result.not_started = len(todo) - start
                    break
                batch = todo[start:start + step]
                progress.start_item(batch[0][0].id)
                for (item, path), audio in zip(batch, self._process_isolated([i for i, _ in batch])):
                    self._save(item, path, audio, result)
                progress.update(len(batch), failed=len(result.failed))
        result.stopped = stop.exit_code
        if result.failed:
            result.bad_list = write_bad_list(out_dir, result.failed)
            log.warning("%s failed, listed in %s", plural(len(result.failed), "item"), result.bad_list)
        return result

    def _process_isolated(self, batch: List[Item]) -> List[Audio | BaseException]:
        """Outputs of a batch; when the batch fails, each item again on its own so only bad ones fail."""
        try:
            return self.process_batch(batch)
        except InferenceError:
            raise
        except ITEM_ERRORS as err:
            if len(batch) == 1:
                return [err]
        outputs: List[Audio | BaseException] = []
        for item in batch:
            try:
                outputs.append(self.process(item))
            except InferenceError:
                raise
            except ITEM_ERRORS as err:
                outputs.append(err)
        return outputs

    @staticmethod
    def _save(item: Item, path: Path, audio: Audio | BaseException, result: RunResult) -> None:
        from processors.audio import save_audio

        if isinstance(audio, BaseException):
            # Bad input (ValueError and our own error types, unreadable files) is listed in one line. A plain
            # RuntimeError (torch's shape and dtype errors) is likely a bug that would fail every item: the run's
            # first one shows its traceback, so the cause is on screen and not only in "N failed" and the list.
            if type(audio) is RuntimeError and not any(row[2].startswith("RuntimeError:") for row in result.failed):
                log.warning("item %s failed with an unexpected error", item.id, exc_info=audio)
            else:
                log.debug("item %s failed", item.id, exc_info=audio)
            result.failed.append((item.id, item.label, f"{type(audio).__name__}: {audio}"))
            return
        try:
            result.written.append(save_audio(path, audio.waveform, audio.sample_rate))
        except ITEM_ERRORS as err:
            result.failed.append((item.id, item.label, f"{type(err).__name__}: {err}"))


class FileProcessing(TaskPipeline):
    """A model that has a runner only (``echelon-infer`` feeds it its own kind of input file: a vocoder's copy
    synthesis of a wav or a saved mel, an autoencoder's reconstruction) as a task pipeline of task ``process``:
    one input file in, its audio out, through the runner's own :meth:`process`. So a server takes every model
    ``echelon-infer`` takes. One call at a time: runners make no promise about threads."""

    task = "process"

    def __init__(self, runner: Any):
        self.runner = runner
        data = getattr(runner.config, "data", None)
        self.sample_rate = int(getattr(data, "sample_rate", 0) or 0)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset({self.task}))

    def process(self, path: str) -> Audio:
        """The runner's output for the input file at ``path`` (its suffix tells the runner what it holds)."""
        return self.runner.process(file_items([path])[0])

    def process_audio(self, audio: Audio) -> Audio:
        """The runner's output for audio already in memory (a server's upload), passed to it as a wav file."""
        import tempfile

        from processors.audio import save_audio

        with tempfile.TemporaryDirectory(prefix="echelon-process-") as tmp:
            return self.process(str(save_audio(Path(tmp) / "input.wav", audio.waveform, audio.sample_rate,
                                               subtype="FLOAT")))
