"""The contract between ``echelon-finetune`` and a family that can adapt a pretrained voice to recordings.

``echelon-finetune`` (``finetune/``, above ``models/`` and ``evaluation/``) prepares the reader's utterances,
scores voices and keeps the best; what training means is the family's. A family registers a
:class:`VoiceFinetuner` subclass under its checkpoints' ``model_type`` (the decorator
``register("finetuner", "<model_type>")``, as ``models/tts/vits/finetune.py`` does), and the command finds it from the base checkpoint (:func:`finetuner_for`). The calls come in this order:
``__init__`` (loads the base) -> :meth:`prepare_base` (one-time work per base voice, cached) ->
:meth:`speak` (the base row) -> :meth:`train` (calls ``on_eval`` every ``eval_every`` steps; the callback may
call :meth:`speak` and :meth:`save_voice`) -> :meth:`blend_with_base` (optional; then :meth:`speak` and
:meth:`save_voice` again) -> :meth:`export`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from models.base import checkpoint as ckpt
from utils.config import ConfigError, apply_overrides
from utils.registry import get, names

#: ``(step, cpu_minutes_trained) -> None or a reason to stop``: the command's evaluation, called from inside
#: training; a family's trainer stops (saved) when it returns a reason
EvalCallback = Callable[[int, float], Optional[str]]
Progress = Callable[[str, int, int], None]


class FinetuneError(ValueError):
    """A fine-tuning run that cannot start or go on; the message names the culprit (one line)."""


@dataclass
class FinetuneBudget:
    """When training stops: whichever comes first (``cpu_minutes``: process CPU time, all threads, training
    and in-training evaluation together; ``max_steps``: optimizer steps)."""

    cpu_minutes: Optional[float] = 30.0
    max_steps: Optional[int] = None
    eval_every: int = 100
    seed: int = 1234


@dataclass
class TrainingReport:
    """What :meth:`VoiceFinetuner.train` did: its last step, the CPU minutes it used, why it stopped."""

    step: int
    cpu_minutes: float
    stopped_by: str
    details: Dict[str, Any] = field(default_factory=dict)


class VoiceFinetuner:
    """A pretrained voice being adapted to one reader (see the module doc for the call order)."""

    sample_rate: int  # the rate utterances must be prepared at
    #: latent frames per second of the decoder: where a decoder that repeats its upsampling kernel per frame
    #: buzzes (:func:`evaluation.spectral.frame_rate_lines_db`); None leaves the buzz unmeasured
    frame_rate_hz: Optional[float] = None

    def __init__(self, base_ckpt_dir: Path, exp_dir: Path) -> None:
        self.base_ckpt_dir, self.exp_dir = Path(base_ckpt_dir), Path(exp_dir)
        self.settings: List[str] = []  # ``--set KEY=VALUE`` overrides of the fine-tuning experiment config

    def with_settings(self, raw: Dict[str, Any]) -> Dict[str, Any]:
        """The experiment config ``raw`` with :attr:`settings` applied (the caller validates it: unknown keys
        fail there)."""
        return apply_overrides(raw, self.settings)

    def check_settings(self) -> None:
        """Raise :class:`~utils.config.ConfigError` for a setting the fine-tuning config does not take, before
        anything is written (default: :attr:`settings` must be empty)."""
        if self.settings:
            raise ConfigError(f"--set {self.settings[0]}: this family's fine-tuning takes no settings")

    def prepare_base(self, cache_dir: Path, progress: Optional[Progress] = None) -> Dict[str, Any]:
        """One-time work on the base voice (e.g. rebuilding parts it was shipped without); cached in
        ``cache_dir``. Returns what to report."""
        return {}

    def set_playback_ratio(self, ratio: float) -> Optional[int]:
        """Fit the reader's recordings played ``ratio`` times slower (their pitch and formants that much lower:
        nearer a base voice pitched below the reader) and make the voice play its output ``ratio`` times faster,
        so that it speaks at the reader's own pitch. Called before :meth:`train`; returns the voice's output
        rate (the base voice's rate x ``ratio``), or None when the family cannot (the run then goes on at
        ratio 1)."""
        return self.sample_rate if ratio == 1.0 else None

    def check_text(self, text: str) -> Optional[str]:
        """Why the voice's front end cannot read a transcript (the utterance is then skipped), or None."""
        return None

    def speak(self, texts: Sequence[str], tempo: float = 1.0, seed: int = 0) -> List[Tuple[np.ndarray, int]]:
        """The current weights read ``texts`` (``tempo`` > 1 slower): ``[(wav (T,), sample_rate)]``."""
        raise NotImplementedError

    def train(self, manifest: Path, budget: FinetuneBudget, on_eval: EvalCallback, resume: bool,
              progress: bool = True) -> TrainingReport:
        """Fine-tune on the utterances of ``manifest`` until the budget is spent."""
        raise NotImplementedError

    def save_voice(self, out_dir: Path, tempo: float) -> Path:
        """Write the current weights as a checkpoint ``echelon-infer --ckpt_dir`` takes (published atomically),
        ``tempo`` times slower than the base voice by default."""
        raise NotImplementedError

    def blend_with_base(self, voice_dir: Path, weight: float) -> bool:
        """Make the voice that :meth:`speak` and :meth:`save_voice` use from now on the one saved in
        ``voice_dir`` with the part that renders the waveform moved back towards the base voice's weights:
        ``base + weight * (saved - base)`` (1: the saved voice). Returns False when this family cannot (nothing
        changes then)."""
        return False

    def export(self, voice_dir: Path, onnx_path: Path) -> List[Path]:
        """Export the saved voice for other runtimes (e.g. Piper's ``.onnx`` + ``.onnx.json``); [] if the
        family has no such format."""
        return []


def evaluation_due(trainer: Any, on_eval: Optional[EvalCallback], eval_every: int) -> bool:
    """Whether this step of a fine-tuning trainer is one that evaluates (every ``eval_every`` steps)."""
    return on_eval is not None and eval_every > 0 and trainer.step % eval_every == 0


def evaluate_during_training(trainer: Any, on_eval: Optional[EvalCallback], eval_every: int) -> None:
    """A fine-tuning trainer's ``after_step``: every ``eval_every`` steps, ``on_eval`` (inside the CPU budget,
    so that ``--cpu_minutes`` bounds what the run costs after its preparation: with the evaluations outside it,
    a full 30-minute run on 2 cores took ~36 minutes of wall time with a fresh cache), and a stop (the step
    saved) when it gives a reason."""
    if not evaluation_due(trainer, on_eval, eval_every):
        return
    reason = on_eval(trainer.step, trainer.cpu_minutes_used())
    if reason:
        trainer.request_stop(f"{reason} (step {trainer.step})")


def stop_cause(trainer: Any, budget: FinetuneBudget) -> str:
    """Why a fine-tuning trainer's ``train()`` returned, for :class:`TrainingReport`."""
    if trainer.interrupted:
        return "interrupted"
    if trainer.stop_reason and trainer.stop_reason.startswith("stopped early"):
        return trainer.stop_reason  # the evaluations asked for it
    if budget.cpu_minutes and trainer.cpu_minutes_used() >= budget.cpu_minutes:
        return "cpu budget"
    return "max steps"


def finetuner_for(base_ckpt_dir: Path, exp_dir: Path) -> VoiceFinetuner:
    """The registered finetuner of the base checkpoint's family, built on it."""
    src = ckpt.resolve_checkpoint_dir(base_ckpt_dir)
    model_type = ckpt.model_type_of(src)
    if model_type not in names("finetuner"):
        raise FinetuneError(f"--base_ckpt_dir {base_ckpt_dir}: a {model_type!r} checkpoint; echelon-finetune adapts "
                            f"voices of the families that register a finetuner: {', '.join(names('finetuner'))}")
    cls = get("finetuner", model_type)
    return cls(Path(base_ckpt_dir), Path(exp_dir))
