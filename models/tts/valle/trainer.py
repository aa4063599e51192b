"""VALL-E training through the shared BaseTrainer.

``train.train_stage`` 0 trains AR and NAR together (loss = their mean), 1 the AR only, 2 the NAR only (the
reference's two-run recipe: AR, then NAR from the AR checkpoint via ``--init_from``). Losses are summed
cross-entropies divided by the batch's frames (Amphion; lifeiteng back-propagates the sum, which only its
scale-invariant ScaledAdam tolerates). AdamW with linear warmup + cosine decay, stepped per optimizer step.
Batches are length-bucketed by frames (``item_lengths``).

Randomness: the NAR stage (uniform over 1..Q-1) and the prefix-mode-1 prompt length are drawn from
``numpy.random.default_rng((seed, epoch, batch_in_epoch))`` — a function of the trainer's position, so a resumed
run draws exactly what the uninterrupted one drew (the reference's private ``random.Random(0)`` is not saved).
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
import torch

from models.base.trainer import BaseTrainer
from models.tts.valle.config import ValleExperimentConfig
from models.tts.valle.dataset import ValleCodesDataset, collate_codes
from models.tts.valle.model import Valle, prefix_len_bounds
from utils.registry import register


def warmup_cosine(warmup: int, decay: int, min_ratio: float):
    """LR multiplier: linear 0 -> 1 over ``warmup`` steps, then cosine 1 -> ``min_ratio`` over ``decay`` steps."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, decay))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@register("trainer", "valle")
class ValleTrainer(BaseTrainer):
    config_class = ValleExperimentConfig

    def build_models(self):
        m = self.cfg.model
        if len(self.cfg.data.symbols) > m.num_text_tokens:
            raise ValueError(f"data.symbols has {len(self.cfg.data.symbols)} entries > model.num_text_tokens {m.num_text_tokens}")
        model = Valle.from_config(m)
        # Stage 1 / 2 train one half; the other is frozen (no gradients, none unused under DDP).
        frozen = {1: model.nar_parameters(), 2: model.ar_parameters()}.get(self.cfg.train.train_stage, [])
        for p in frozen:
            p.requires_grad_(False)
        return {"valle": model}

    def trained_parameters(self, model: Valle):
        return [p for p in model.parameters() if p.requires_grad]

    def build_optimizers(self, models):
        t = self.cfg.train
        params = self.trained_parameters(models["valle"])
        return {"valle": torch.optim.AdamW(params, lr=t.learning_rate, betas=t.betas, eps=t.eps, weight_decay=t.weight_decay)}

    def build_schedulers(self, optimizers):
        t = self.cfg.train
        decay = t.decay_steps if t.decay_steps is not None else max(1, t.max_steps - t.warmup_steps)
        factor = warmup_cosine(max(1, t.warmup_steps), decay, t.min_lr_ratio)
        return {"valle": torch.optim.lr_scheduler.LambdaLR(optimizers["valle"], factor)}

    def build_datasets(self):
        d, m = self.cfg.data, self.cfg.model
        make = lambda manifest: ValleCodesDataset(manifest, d.features_dir, d.symbols, m.num_quantizers, d.min_frames, d.max_frames)
        return make(d.train_manifest), (make(d.valid_manifest) if d.valid_manifest else None)

    def item_lengths(self, dataset):
        return dataset.frames()

    def collate(self, items):
        return collate_codes(items)

    def draw_stage_and_prefix(self, code_lens: torch.Tensor, key: Tuple[int, ...]) -> Tuple[int, int]:
        rng = np.random.default_rng((self.cfg.train.seed, *key))
        stage = int(rng.integers(1, self.cfg.model.num_quantizers)) if self.cfg.model.num_quantizers > 1 else 0
        low, high = prefix_len_bounds(code_lens)
        prefix = int(rng.integers(low, high)) if high > low else 0
        return stage, min(prefix, self.cfg.train.max_prefix_frames)

    def losses(self, batch, key) -> Dict[str, torch.Tensor]:
        stage, prefix = self.draw_stage_and_prefix(batch["code_lens"], key)
        out = self.models["valle"](batch["text"], batch["text_lens"], batch["codes"], batch["code_lens"],
                                   train_stage=self.cfg.train.train_stage, nar_stage=stage, prefix_len=prefix)  # fmt: skip
        frames = out["frames"]
        values = {"loss": out["loss"] / frames}
        for part in ("ar", "nar"):
            if f"{part}_loss" in out:
                values[f"{part}_loss"] = out[f"{part}_loss"] / frames
        return values

    def train_step(self, batch):
        values = self.losses(batch, (self.epoch, self.batch_in_epoch))
        self.optimize("valle", values["loss"])
        return values

    def valid_step(self, batch, index):
        return {k: float(v) for k, v in self.losses(batch, (2**31, index)).items()}
