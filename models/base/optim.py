"""Optimizers and learning-rate schedules chosen by name from the train config.

``train.optimizers`` and ``train.schedulers`` map a model name (a key of ``build_models()``) to its settings;
the entry ``default`` serves every model without an entry of its own (an own entry does not inherit from
``default``: it is complete by itself)::

    train: {
      optimizers: { default: { type: "adamw", lr: 2e-4, betas: [0.8, 0.99], eps: 1e-9 } },
      schedulers: { default: { type: "exponential", gamma: 0.999 },
                    discriminator: { type: "constant", warmup_steps: 1000 } },
      scheduler_interval: "epoch",      // when a scheduler steps: per optimizer step or per epoch
    }

Schedules, as a function of ``k`` = how many times the scheduler has stepped (0 at the start):

* ``exponential``: ``lr·gamma^k`` (``torch.optim.lr_scheduler.ExponentialLR``);
* ``constant``: ``lr·min(1, (k+1)/(warmup+1))`` — linear warm-up, then flat;
* ``cosine``: the warm-up above, then ``min_lr + (lr − min_lr)·(1 + cos(π·p))/2`` with
  ``p = (k − warmup)/(total − warmup)`` clamped to [0, 1];
* ``inverse_sqrt`` (Noam): ``lr·min((k+1)/(warmup+1), sqrt((warmup+1)/(k+1)))`` — peaks at ``lr`` after the
  warm-up, then decays as ``1/sqrt(k)``. The original Noam rate ``d_model^-0.5·min(k^-0.5, k·w^-1.5)`` is this
  schedule with ``lr = d_model^-0.5·(w+1)^-0.5``;
* ``noam``: that original rate as Glow-TTS / the Transformer write it, with ``lr`` as its scale (so their configs
  carry over unchanged): ``lr·d_model^-0.5·min(n^-0.5, n·warmup^-1.5)`` with ``n = k + 1`` — peaks at
  ``n = warmup``;
* ``geometric``: the warm-up above, ``lr`` until ``decay_start``, then ``lr·(min_lr/lr)^p`` with
  ``p = (k − decay_start)/(total − decay_start)`` clamped to [0, 1] — a straight line in log(lr) from ``lr`` to
  ``min_lr``, flat afterwards. maum-ai's WaveGrad 2 decay ``lr·0.05^clip((k − 25k)/75k, 0, 1)`` is
  ``{type: "geometric", decay_start: 25000, total_steps: 100000, min_lr: 0.05·lr}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Literal, Mapping, Optional

import torch
from torch import nn

DEFAULT_KEY = "default"


@dataclass
class OptimizerConfig:
    """One optimizer. ``weight_decay`` null = the optimizer's own default (AdamW 0.01, Adam and SGD 0)."""

    type: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # adam, adamw
    eps: float = 1e-8  # adam, adamw
    weight_decay: Optional[float] = None
    momentum: float = 0.0  # sgd
    nesterov: bool = False  # sgd

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.nesterov and (self.type != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs type 'sgd' and momentum > 0")


@dataclass
class SchedulerConfig:
    """One learning-rate schedule (formulas in the module docstring); counts are scheduler steps."""

    type: Literal["none", "exponential", "constant", "cosine", "inverse_sqrt", "geometric", "noam"] = "none"
    gamma: float = 0.999  # exponential
    warmup_steps: int = 0  # constant, cosine, inverse_sqrt, geometric, noam
    total_steps: Optional[int] = None  # cosine, geometric; null = train.max_steps (or max_epochs per epoch)
    min_lr: float = 0.0  # cosine floor; geometric end (> 0)
    decay_start: int = 0  # geometric: the decay begins here
    d_model: Optional[int] = None  # noam: the model width of its d_model^-0.5 factor

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.total_steps is not None and self.total_steps <= self.warmup_steps:
            raise ValueError(f"total_steps {self.total_steps} must exceed warmup_steps {self.warmup_steps}")
        if self.type == "geometric" and (self.min_lr <= 0 or self.decay_start < self.warmup_steps):
            raise ValueError(f"geometric schedule needs min_lr > 0 (got {self.min_lr}) and decay_start >= "
                             f"warmup_steps (got {self.decay_start} < {self.warmup_steps})")
        if self.type == "noam" and (self.warmup_steps < 1 or self.d_model is None or self.d_model < 1):
            raise ValueError(f"noam needs warmup_steps >= 1 and d_model >= 1, got {self.warmup_steps} and {self.d_model}")


def entry_for(table: Mapping[str, object], name: str) -> Optional[object]:
    """The settings of model ``name``: its own entry, else ``default``, else None."""
    return table.get(name, table.get(DEFAULT_KEY))


def check_entries(table: Mapping[str, object], models: Iterable[str], what: str) -> None:
    """Every key must name a model (or be ``default``), so a misspelled model name fails loudly."""
    names = list(models)
    unknown = sorted(set(table) - set(names) - {DEFAULT_KEY})
    if unknown:
        raise ValueError(f"train.{what}: {unknown} name no model (models: {', '.join(names)}; or use 'default')")


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    extra = {} if cfg.weight_decay is None else {"weight_decay": cfg.weight_decay}
    if cfg.type == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **extra)
    if cfg.type == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **extra)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, **extra)


def build_optimizers(
    models: Mapping[str, nn.Module], table: Mapping[str, OptimizerConfig]
) -> Dict[str, torch.optim.Optimizer]:
    """One optimizer per model that has an entry (or a ``default``), over all its parameters."""
    check_entries(table, models, "optimizers")
    out = {}
    for name, model in models.items():
        cfg = entry_for(table, name)
        if cfg is None:
            raise ValueError(f"train.optimizers has no entry for model {name!r} and no 'default'")
        out[name] = build_optimizer(model.parameters(), cfg)
    return out


class WarmupFactor:
    """LambdaLR factor of the ``constant``, ``cosine``, ``inverse_sqrt``, ``geometric`` and ``noam`` schedules.

    A callable object (not a closure) so that LambdaLR's state_dict stores its plain-number settings.
    """

    def __init__(self, kind: str, warmup: int, total: int = 0, floor: float = 0.0, start: int = 0, d_model: int = 0):
        self.kind, self.warmup, self.total, self.floor, self.start = kind, warmup, total, floor, start
        self.d_model = d_model

    def __call__(self, k: int) -> float:
        if self.kind == "noam":
            n = k + 1
            return self.d_model**-0.5 * min(n**-0.5, n * self.warmup**-1.5)
        ramp = (k + 1) / (self.warmup + 1)
        if self.kind == "inverse_sqrt":
            return min(ramp, math.sqrt((self.warmup + 1) / (k + 1)))
        if k < self.warmup or self.kind == "constant":
            return min(1.0, ramp)
        if self.kind == "geometric":
            return self.floor ** min(1.0, max(0.0, (k - self.start) / max(1, self.total - self.start)))
        progress = min(1.0, (k - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, default_total: Optional[int]
) -> Optional[torch.optim.lr_scheduler.LRScheduler]:
    """A scheduler for ``optimizer`` (None for type ``none``); ``default_total`` fills cosine's null total."""
    if cfg.type == "none":
        return None
    if cfg.type == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.gamma)
    total = 0
    floor = 0.0
    if cfg.type in ("cosine", "geometric"):
        total = cfg.total_steps if cfg.total_steps is not None else default_total
        after = max(cfg.warmup_steps, cfg.decay_start if cfg.type == "geometric" else 0)
        if total is None or total <= after:
            raise ValueError(f"{cfg.type} schedule: total_steps {total} must be set and exceed warmup_steps "
                             f"(and decay_start), here {after}")
        base = optimizer.param_groups[0]["lr"]
        floor = cfg.min_lr / base
    factor = WarmupFactor(cfg.type, cfg.warmup_steps, total, floor, cfg.decay_start, cfg.d_model or 0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_schedulers(
    optimizers: Mapping[str, torch.optim.Optimizer], table: Mapping[str, SchedulerConfig],
    default_total: Optional[int] = None,
) -> Dict[str, torch.optim.lr_scheduler.LRScheduler]:  # fmt: skip
    """One scheduler per optimizer whose entry (or ``default``) is not ``none``."""
    check_entries(table, optimizers, "schedulers")
    out = {}
    for name, opt in optimizers.items():
        cfg = entry_for(table, name)
        sched = build_scheduler(opt, cfg, default_total) if cfg is not None else None
        if sched is not None:
            out[name] = sched
    return out
