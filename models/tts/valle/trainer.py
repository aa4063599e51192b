"""VALL-E training through the shared BaseTrainer.

``train.train_stage`` 0 trains AR and NAR together (loss = their mean), 1 the AR only, 2 the NAR only (the
reference's two-run recipe: AR, then NAR from the AR checkpoint via ``--init_from``). Losses are summed
cross-entropies divided by the batch's frames (Amphion; lifeiteng back-propagates the sum, which only its
scale-invariant ScaledAdam tolerates). Optimizer and schedule come from ``train.optimizers`` /
``train.schedulers`` (default: AdamW with linear warm-up + cosine decay, stepped per optimizer step); batches
from ``train.batching`` (default: duration buckets, seconds = code frames / 75 Hz).

The codec is a frozen component (``build_frozen``), built only when validation logs a generated clip
(``train.valid_audio`` with TensorBoard on); it is never checkpointed, and meta.json records where it came
from (hub id, local folder, or the tiny random one).

Randomness: the NAR stage (uniform over 1..Q-1) and the prefix-mode-1 prompt length are drawn from
``numpy.random.default_rng((seed, epoch, batch_in_epoch))`` — a function of the trainer's position, so a resumed
run draws exactly what the uninterrupted one drew (the reference's private ``random.Random(0)`` is not saved).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from models.base.frozen import FrozenComponent, pretrained_source
from models.base.trainer import BaseTrainer
from models.tts.valle.config import ValleDataConfig, ValleExperimentConfig
from models.tts.valle.dataset import CODE_FRAME_RATE, ValleCodesDataset, collate_codes
from models.tts.valle.decoding import continuation_prompt_len, synthesize_codes
from models.tts.valle.model import Valle, prefix_len_bounds
from processors.codec import TINY_RANDOM, CodecError, EncodecCodec
from utils.registry import register


def codec_component(data: ValleDataConfig) -> FrozenComponent:
    """The frozen EnCodec model of ``data.codec`` (hub id, local folder or ``tiny-random``), built on first use."""
    if data.codec == TINY_RANDOM:
        source = {"kind": "random", "note": "tiny EnCodec (processors.codec.tiny_encodec_config), seed 0"}
    else:
        source = pretrained_source(data.codec)
    build = lambda: EncodecCodec.load(data.codec, data.codec_bandwidth).model  # noqa: E731
    return FrozenComponent.lazy(build, {**source, "bandwidth": data.codec_bandwidth})


@register("trainer", "valle")
class ValleTrainer(BaseTrainer):
    config_class = ValleExperimentConfig

    def build_frozen(self):
        return {"codec": codec_component(self.cfg.data)}

    def build_models(self):
        m = self.cfg.model
        if len(self.cfg.data.symbols) > m.num_text_tokens:
            raise ValueError(f"data.symbols has {len(self.cfg.data.symbols)} entries > model.num_text_tokens {m.num_text_tokens}")
        model = Valle.from_config(m)
        # Stage 1 / 2 train one half; the other is frozen (no gradients, none unused under DDP; AdamW skips
        # parameters without gradients, weight decay included).
        frozen = {1: model.nar_parameters(), 2: model.ar_parameters()}.get(self.cfg.train.train_stage, [])
        for p in frozen:
            p.requires_grad_(False)
        return {"valle": model}

    @property
    def codec(self) -> EncodecCodec:
        """The frozen codec (loaded on first use); it must match the codes' layout."""
        d = self.cfg.data
        codec = EncodecCodec(self.frozen_modules["codec"], d.codec_bandwidth, d.codec)
        if codec.frame_rate != CODE_FRAME_RATE or codec.num_quantizers != self.cfg.model.num_quantizers:
            raise CodecError(f"data.codec {d.codec!r}: {codec.num_quantizers} codebooks at {codec.frame_rate} Hz, "
                             f"the codes have {self.cfg.model.num_quantizers} at {CODE_FRAME_RATE} Hz")  # fmt: skip
        return codec

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
        if index == 0 and self.train_cfg.valid_audio and self.train_cfg.tensorboard and self.is_main:
            self.log_continuation(batch)
        return {k: float(v) for k, v in self.losses(batch, (2**31, index)).items()}

    def log_continuation(self, batch) -> None:
        """Continue the first validation item from its first half (<= 3 s) and log prompt + continuation."""
        frames = int(batch["code_lens"][0])
        prompt = batch["codes"][:1, : continuation_prompt_len(frames)]
        generator = torch.Generator(self.device).manual_seed(self.cfg.train.seed)
        codes, _ = synthesize_codes(self.unwrap("valle"), batch["text"][:1], batch["text_lens"][:1], prompt,
                                    torch.tensor([prompt.shape[1]], device=self.device), self.cfg.decoding, generator)  # fmt: skip
        codec, rate = self.codec, self.codec.sample_rate
        self.tracker.log_audio("valid/continuation", codec.decode(torch.cat([prompt[0], codes[0]])), rate, self.step)
        self.tracker.log_audio("valid/target", codec.decode(batch["codes"][0, :frames]), rate, self.step)
