"""An experiment directory holds one training run; starting another one there must be asked for.

``echelon-train`` into a directory that already has checkpoints:

* without ``--resume``/``--overwrite`` it refuses before building anything (a second run would write
  ``step_00000010`` beside the first run's ``step_00000020``, and inference would load the old one);
* ``--resume`` continues the latest valid checkpoint (the log keeps only the steps up to it, so no step is
  logged twice: :func:`truncate_log`);
* ``--overwrite`` moves the old run (checkpoints, ``train_log.jsonl``, TensorBoard events) into
  ``<exp_dir>/previous_runs/<time>/``: nothing is deleted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

from models.base import checkpoint as ckpt
from utils.io import atomic_write_text, check_writable_dir

RUN_ENTRIES = ("checkpoints", "train_log.jsonl", "tensorboard")  # what one training run writes into exp_dir
PREVIOUS_RUNS = "previous_runs"
LOG_NAME = "train_log.jsonl"


class ExperimentExistsError(ckpt.CheckpointError):
    """The experiment directory already holds a run and neither --resume nor --overwrite was given."""


def last_step(exp_dir: str | os.PathLike) -> Optional[int]:
    """Step of the newest checkpoint in ``exp_dir/checkpoints`` (None when there is none)."""
    latest = ckpt.latest_checkpoint(Path(exp_dir) / "checkpoints")  # ordered by the step in meta.json
    return None if latest is None else int(json.loads((latest / ckpt.META).read_text())["step"])


def prepare_exp_dir(exp_dir: str | os.PathLike, resume: bool, overwrite: bool, main_process: bool = True) -> Optional[Path]:
    """Check ``exp_dir`` before training starts; with ``overwrite`` move an earlier run aside (returns where).

    Raises :class:`ExperimentExistsError` (one line) when it holds checkpoints and neither flag was given,
    ``utils.io.OutputPathError`` when it is a file or cannot be written.
    """
    exp_dir = check_writable_dir(exp_dir, "experiment directory")
    step = last_step(exp_dir)
    if step is None or resume:
        return None
    if not overwrite:
        raise ExperimentExistsError(f"{exp_dir} already holds a run at step {step}: --resume to continue, "
                                    "--overwrite to start again (the old run is moved to "
                                    f"{exp_dir / PREVIOUS_RUNS}/)")
    if not main_process:  # the main process moves it; the others must not race it
        return None
    target = exp_dir / PREVIOUS_RUNS / time.strftime("%Y%m%d-%H%M%S")
    while target.exists():
        target = target.with_name(target.name + "_1")
    target.mkdir(parents=True)
    for name in RUN_ENTRIES:
        if (exp_dir / name).exists():
            os.replace(exp_dir / name, target / name)
    return target


def truncate_log(exp_dir: str | os.PathLike, step: int) -> int:
    """Drop ``train_log.jsonl`` records after ``step`` (a resumed run logs them again); returns how many."""
    path = Path(exp_dir) / LOG_NAME
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            after = int(json.loads(line)["step"]) > step
        except (ValueError, KeyError, TypeError):  # a torn last line from a killed run
            after = True
        if after:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return dropped
