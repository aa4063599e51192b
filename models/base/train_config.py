"""TrainConfig: the ``train`` section every trainer understands (a model's trainer subclasses it).

Its own module so that configs can be declared and validated without importing the training loop
(``models.base.trainer`` exports the name too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Optional

from models.base import optim
from models.base.sampler import BatchingConfig


@dataclass
class TrainConfig:
    """Settings every trainer understands (model trainers subclass this dataclass)."""

    seed: int = 1234
    max_steps: int = 100000
    max_epochs: Optional[int] = None
    batch_size: int = 8  # items per batch and process when train.batching.type is "fixed"
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    # per model name (or "default"): see models/base/optim.py
    optimizers: Dict[str, optim.OptimizerConfig] = field(default_factory=lambda: {"default": optim.OptimizerConfig()})
    schedulers: Dict[str, optim.SchedulerConfig] = field(default_factory=dict)
    num_workers: int = 0
    grad_accum_steps: int = 1
    grad_clip_norm: Optional[float] = None
    mixed_precision: Optional[Literal["no", "fp16", "bf16"]] = None  # None: the launcher's, else "no"
    scheduler_interval: Literal["step", "epoch"] = "epoch"
    log_every: int = 50
    valid_every: int = 1000
    save_every: int = 1000
    keep_last: int = 3
    tensorboard: bool = True
    progress_bar: bool = True
    cpu_minutes: Optional[float] = None  # stop (saved, exit 0) once this run and its earlier runs used this much CPU
