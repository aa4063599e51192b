"""VITS trainer on the shared BaseTrainer (the official ``train.py`` / ``train_ms.py`` recipe).

Per step, with a random ``segment_samples``-sample window of each utterance:

* discriminator (VITS ``MultiPeriodDiscriminator``): LSGAN loss on real vs detached generated windows;
* generator: LSGAN adversarial + feature matching (x2) + mel L1 x ``c_mel`` (45) + duration loss (SDP NLL or
  deterministic L2) + KL x ``c_kl`` (1) between the flowed posterior and the aligned text prior.

The GAN step is :func:`models.base.adversarial.adversarial_step`. Optimisers and schedules come from
``train.optimizers`` / ``train.schedulers``: the official AdamW(lr 2e-4, betas (0.8, 0.99), eps 1e-9) for both,
ExponentialLR(0.999) stepped per epoch (``configs/*.json5``). The mel front end is a frozen component.
Single- and multi-speaker (``model.n_speakers > 1`` uses the manifest's speakers through ``data.speakers``).
"""

from __future__ import annotations

import functools
from typing import Dict, Optional

import torch

from models.base.adversarial import adversarial_step
from models.base.trainer import BaseTrainer
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.dataset import VITSDataset, collate_vits, load_datasets, valid_dataset
from models.tts.vits.model import VITS
from models.tts.vits.piper import warn_if_reinitialised
from modules.commons import slice_segments
from modules.discriminators import vits_discriminator
from modules.losses import kl_loss, mel_l1_loss
from processors.data.manifest import speaker_index
from processors.data.shar import CutMeta
from processors.data.shar_reader import cut_audio
from processors.spectrogram import VitsMelSpectrogram
from utils.registry import register


@register("trainer", "vits")
class VITSTrainer(BaseTrainer):
    config_class = VITSExperimentConfig

    # ------------------------------------------------------------------ construction
    def build_frozen(self):
        return {"mel": VitsMelSpectrogram.from_config(self.cfg.data)}

    def build_models(self):
        cfg = self.cfg
        t = cfg.train
        disc = vits_discriminator(cfg.model.use_spectral_norm, t.disc_periods, t.disc_period_channels, t.disc_use_scale)
        return {"generator": VITS.from_config(cfg.model), "discriminator": disc}

    def load_weights(self, path, strict: bool):
        reports = super().load_weights(path, strict)
        warn_if_reinitialised(path)  # a converted Piper voice: say which parts start from scratch
        return reports

    def build_datasets(self):
        return load_datasets(self.cfg.data, self.cfg.model.n_speakers, self.cfg.train.segment_samples)

    def collate(self, items):
        return collate_vits(items)

    shar_fields = ["recording"]  # the text and speaker come with the cut's supervision

    @functools.cached_property
    def _shaper(self) -> VITSDataset:
        """The manifest dataset's text and length rules, without a manifest (for streamed cuts)."""
        return VITSDataset(None, self.cfg.data, self.cfg.model.n_speakers, self.cfg.train.segment_samples)

    def keep_cut(self, meta) -> bool:
        """The official filter of the manifest dataset (text that phonemises within the length limits, clips
        of at least one segment), remembered per cut: it runs before every epoch's plan."""
        if not hasattr(self, "_kept"):
            self._kept = {}
        if meta.id not in self._kept:
            try:
                self._shaper.checked_ids(meta.text, meta.duration)
                self._kept[meta.id] = True
            except ValueError:
                self._kept[meta.id] = False
        return self._kept[meta.id]

    def item_from_cut(self, cut):
        """A streamed cut (audio at data.sample_rate, supervision text and speaker) -> the manifest dataset's
        item (:meth:`keep_cut` has left out the cuts the official filter drops)."""
        if cut.sampling_rate != self.cfg.data.sample_rate:
            raise ValueError(f"shard audio of {cut.id} is {cut.sampling_rate} Hz, data.sample_rate is "
                             f"{self.cfg.data.sample_rate}: write the shards with --audio_rate {self.cfg.data.sample_rate}")
        sup = cut.supervisions[0]
        try:  # the text keep_cut checked: the normalised one when the supervision has it (every route's)
            ids = self._shaper.checked_ids(CutMeta.of(cut).text, cut.duration)
        except ValueError as err:
            raise ValueError(f"shard item {cut.id}: {err}") from None
        sid = speaker_index(sup.speaker or "", self.cfg.data.speakers, self.cfg.model.n_speakers)
        return self._shaper.item(cut.id, torch.from_numpy(cut_audio(cut)), ids, sid)

    def build_valid_dataset(self):
        return valid_dataset(self.cfg.data, self.cfg.model.n_speakers)

    def item_lengths(self, dataset):
        return dataset.lengths()

    # ------------------------------------------------------------------ steps
    def _sid(self, batch) -> Optional[torch.Tensor]:
        return batch["sid"] if self.cfg.model.n_speakers > 1 else None

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        hop = self.cfg.data.hop_length
        seg = self.cfg.train.segment_samples
        mel_fn = self.frozen_modules["mel"]
        gen = self.models["generator"]
        out = gen(batch["text"], batch["text_lengths"], batch["spec"], batch["spec_lengths"], sid=self._sid(batch))
        y_hat = out["wav"]
        y = slice_segments(batch["wav"], out["ids_slice"] * hop, seg)
        with torch.no_grad():  # the mel is per frame: slice the spectrogram first, as the official trainer does
            mel_real = mel_fn.spec_to_mel(slice_segments(batch["spec"], out["ids_slice"], seg // hop))
        mel_fake = mel_fn(y_hat.squeeze(1).float())

        t = self.cfg.train
        terms = {
            "loss_mel": mel_l1_loss(mel_real, mel_fake) * t.c_mel,
            "loss_dur": torch.sum(out["l_length"].float()),
            "loss_kl": kl_loss(out["z_p"], out["logs_q"], out["m_p"], out["logs_p"], out["y_mask"]) * t.c_kl,
        }
        return adversarial_step(self, y, y_hat, terms)

    @torch.no_grad()
    def valid_step(self, batch, index: int) -> Dict[str, float]:
        """Resynthesis through the posterior (mel L1 over whole utterances) and one text-to-speech sample."""
        gen: VITS = self.unwrap("generator")
        gen.eval()
        sid = self._sid(batch)
        g = gen.speaker_embedding(sid)
        z, _, _, y_mask = gen.enc_q(batch["spec"], batch["spec_lengths"], g=g)
        wav = gen.dec(z * y_mask, g=g)
        mel_fn = self.frozen_modules["mel"]
        frames = min(wav.size(-1) // self.cfg.data.hop_length, batch["spec"].size(-1))
        mel_real = mel_fn.spec_to_mel(batch["spec"])[..., :frames]
        mel_fake = mel_fn(wav.squeeze(1))[..., :frames]
        mask = y_mask[..., :frames]
        if index == 0:
            tts = gen.infer(batch["text"][:1], batch["text_lengths"][:1], sid=None if sid is None else sid[:1],
                            noise_scale=0.667, noise_scale_w=0.8)
            n = int(tts["lengths"][0])
            self.tracker.log_audio("valid/tts", tts["wav"][0, :, :n], self.cfg.data.sample_rate, self.step)
        return {"mel_l1": float(mel_l1_loss(mel_real, mel_fake, mask))}
