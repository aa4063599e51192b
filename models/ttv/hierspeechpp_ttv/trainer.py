"""TTV trainer (``train_ttv_v1.py`` recipe, fixed): w2v L1 x10, KL x0.1, F0 L1 x1, SDP NLL, CTC.

Official: AdamW lr 2e-4, betas (0.8, 0.99), eps 1e-9, ExponentialLR 0.999 per epoch (``train.optimizers`` /
``train.schedulers`` in ``configs/ttv_v1.json5``), batch 32, no gradient clipping, no GAN. Fixed relative to the official script: the alignment search is imported (numba/torch, no
compile step), it runs on CPU or GPU through the base trainer (no NCCL-only launch), every config key it
reads exists, and short batches are padded to the pitch predictor's 60-frame window.
``train.masked_w2v`` chooses the masked w2v L1 (see ``losses.py``); the default is the released unmasked one.
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.trainer import BaseTrainer
from models.ttv.hierspeechpp_ttv.config import TTVExperimentConfig
from models.ttv.hierspeechpp_ttv.dataset import TTVDataset, collate_ttv
from models.ttv.hierspeechpp_ttv.losses import ttv_losses
from models.ttv.hierspeechpp_ttv.model import TextToVec
from utils.registry import register


@register("trainer", "hierspeechpp_ttv")
class TTVTrainer(BaseTrainer):
    config_class = TTVExperimentConfig

    def build_models(self):
        return {"ttv": TextToVec.from_config(self.cfg.model)}

    def _dataset(self, manifest: str) -> TTVDataset:
        d = self.cfg.data
        return TTVDataset(manifest, d.features_dir, d.min_frames, d.max_frames, d.max_tokens, d.on_unknown)

    def build_datasets(self):
        d = self.cfg.data
        return self._dataset(d.train_manifest), (self._dataset(d.valid_manifest) if d.valid_manifest else None)

    def collate(self, items):
        return collate_ttv(items)

    def _losses(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        t = self.cfg.train
        out = self.models["ttv"](batch["w2v"], batch["length"], batch["text"], batch["text_length"], batch["mel"])
        return ttv_losses(out, batch["w2v"], batch["log_f0"], batch["length"], batch["text_for_ctc"],
                          batch["text_ctc_length"], t.c_w2v, t.c_kl, t.c_f0, t.c_dur, t.c_ctc, t.masked_w2v)

    def train_step(self, batch):
        losses = self._losses(batch)
        self.optimize("ttv", losses["total"])
        return {k: v for k, v in losses.items() if k != "f0_target"}

    @torch.no_grad()
    def valid_step(self, batch, index: int):
        return {k: float(v) for k, v in self._losses(batch).items() if k != "f0_target"}
