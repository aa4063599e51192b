"""``vits_finetune`` trainer: a pretrained VITS voice adapted to a few minutes of one reader's recordings.

What is trained, and why (issue 46; figures in ``egs/tts/finetune/RESULTS.md``):

* the **posterior encoder** ``enc_q`` is frozen: it comes from the base voice (or is rebuilt from it,
  :mod:`models.tts.vits.posterior_distill`), so it maps the reader's audio into the latent space the
  pretrained flow and decoder know. A minute of speech is far too little to learn that space again. Frozen, its
  posterior of each utterance is computed once and cached (:meth:`posterior`);
* the **decoder** learns to render latents in the reader's voice: mel L1 (x ``c_mel``) on random windows,
  plus, from ``disc_start_step``, a light multi-resolution STFT discriminator trained from scratch (LSGAN +
  feature matching; the official 46.7 M-parameter discriminator costs ~10 CPU s a step). Half of its inputs
  (``prior_latents``) are the latents the voice speaks from at inference, the text prior on the recording's
  alignment through the inverse flow, the other half the recording's posterior (:meth:`prior_path_latents`);
* the decoder's **first upsampler** (``dec.ups.0``, ``freeze``) stays the base voice's: a transposed
  convolution of stride 8 on frame-rate latents repeats its kernel once per frame, and trained on a minute of
  speech it learned a buzz at the frame rate (86 Hz and its harmonics at 22.05 kHz, 15-30 dB over the spectrum
  around them; LJSpeech, 250 steps: frozen 3.2 % WER, DNSMOS 3.20, SIM 0.627, trained 9.7 %, 3.07, 0.644);
* the **flow** learns slowly (``lr_flow`` 2e-5; 0 freezes it) the reader's latent statistics through the KL
  between the flowed posterior and the aligned text prior, and the mel loss through the inverse flow. Measured
  on LibriSpeech readers (issue 46): at 5e-5 without inference-path inputs the flow, put back alone into the
  base voice, raised Whisper WER from 2 % to 19 % for +0.05 SIM; frozen, the voice gained +0.14 SIM at 7 % WER
  on reader 2414, and at 2e-5 +0.16 at 8-10 %. Without the inference-path inputs a frozen flow leaves the
  decoder trained on latents it never meets at inference: +0.03 SIM;
* the voice that is scored and kept is an **exponential moving average** of the trained weights
  (``ema_decay`` 0.99, :class:`models.base.weight_average.WeightAverage`): on LibriSpeech reader 533 the
  weights of the step itself reached SIM 0.662 at 11 % Whisper WER by step 400, their average 0.648 at 5 %;
* the **duration predictor** is frozen: a minute of speech gives ~700 phoneme durations, too few to retrain
  its flows without breaking it (speech sped up in the probe). The reader's tempo is matched instead by a
  measured length scale folded into the predictor (:func:`models.tts.vits.finetune.fold_length_scale`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from models.base.adversarial import adversarial_step
from models.base.experiment_config import experiment_config
from models.base.finetune import EvalCallback, evaluate_during_training, evaluation_due
from models.base.weight_average import WeightAverage
from models.tts.vits.config import VITSConfig, VITSDataConfig, VITSTrainConfig
from models.tts.vits.trainer import VITSTrainer
from modules.commons import slice_segments
from modules.discriminators.combined import CombinedDiscriminator
from modules.discriminators.stft import DiscriminatorR
from modules.losses import kl_loss, mel_l1_loss
from modules.monotonic_align import search_alignment
from utils.registry import register


def context_frames(module: nn.Module) -> int:
    """How many frames each side of an output frame ``module``'s stacked 1-D convolutions see (VITS's flow: 4
    couplings of 4 WaveNet layers with kernel 5 reach 4 * 4 * 2 = 32 frames)."""
    return sum((c.kernel_size[0] - 1) * c.dilation[0] // 2 for c in module.modules() if isinstance(c, nn.Conv1d))


@dataclass
class VITSFinetuneTrainConfig(VITSTrainConfig):
    """Training settings of a fine-tuning run (learning rate 0 freezes a part)."""

    # 2e-4 with the first upsampler frozen (below): VCTK p227, 20 CPU minutes, SIM 0.763 at 2.9 % WER, DNSMOS 3.22
    # against 1e-4 with it trained 0.745 at 4.7 %, 3.00
    lr_decoder: float = 2e-4
    lr_flow: float = 2e-5
    lr_text_encoder: float = 0.0
    # generator modules kept as the base voice has them whatever their part's rate (the first upsampler: the
    # frame-rate buzz, module doc)
    freeze: List[str] = field(default_factory=lambda: ["dec.ups.0"])
    # light discriminator: STFT resolutions (n_fft, hop, win) and channels; [] trains without one
    disc_resolutions: List[List[int]] = field(default_factory=lambda: [[1024, 256, 1024], [512, 128, 512],
                                                                        [256, 64, 256]])
    disc_channels: int = 16
    disc_start_step: int = 0
    lr_discriminator: float = 2e-4
    # share of the batch whose decoder input is the latent the voice speaks from at inference (the text prior
    # on the utterance's alignment, through the inverse flow) instead of the recording's posterior latent
    prior_latents: float = 0.5
    prior_noise_scale: float = 0.667  # the prior sample's temperature for those items (inference's default)
    # > 0: the voice evaluated and kept is this exponential moving average of the trained weights (0: the
    # weights of the step itself)
    ema_decay: float = 0.99


@experiment_config("vits_finetune", model=VITSConfig, data=VITSDataConfig, train=VITSFinetuneTrainConfig)
class VITSFinetuneExperimentConfig:
    """A fine-tuning run: the base voice's model and front end, the fine-tuning settings."""


def light_discriminator(resolutions: List[List[int]], channels: int) -> Optional[nn.Module]:
    """Multi-resolution complex-STFT discriminator (~0.1 M parameters at 16 channels), or None."""
    if not resolutions:
        return None
    return CombinedDiscriminator([DiscriminatorR(tuple(r), channels=channels) for r in resolutions])


@register("trainer", "vits_finetune")
class VITSFinetuneTrainer(VITSTrainer):
    """See the module doc. ``on_eval(step, cpu_minutes)`` is called every ``eval_every`` steps; a reason it
    returns stops training there."""

    config_class = VITSFinetuneExperimentConfig
    on_eval: Optional[EvalCallback] = None
    eval_every: int = 0

    def build_models(self):
        t = self.cfg.train
        from models.tts.vits.model import VITS

        models = {"generator": VITS.from_config(self.cfg.model)}
        disc = light_discriminator(t.disc_resolutions, t.disc_channels)
        if disc is not None:
            models["discriminator"] = disc
        return models

    def part_rates(self) -> Dict[str, float]:
        t = self.cfg.train
        return {"dec": t.lr_decoder, "flow": t.lr_flow, "enc_p": t.lr_text_encoder}

    def build_optimizers(self, models):
        """One AdamW with a parameter group per trained part; frozen parts lose their gradients."""
        t = self.cfg.train
        gen = models["generator"]
        groups = []
        rates = self.part_rates()
        frozen = self.frozen_parameters(gen)
        for name, module in gen.named_children():
            lr = rates.get(name, 0.0)
            params = [p for p in module.parameters() if lr > 0 and id(p) not in frozen]
            trained = {id(p) for p in params}
            for p in module.parameters():
                p.requires_grad_(id(p) in trained)
            if params:
                groups.append({"params": params, "lr": lr})
        if not groups:
            raise ValueError("train.lr_decoder, lr_flow and lr_text_encoder are all 0: nothing to fine-tune")
        opts = {"generator": torch.optim.AdamW(groups, betas=(0.8, 0.99), eps=1e-9)}
        if "discriminator" in models:
            opts["discriminator"] = torch.optim.AdamW(models["discriminator"].parameters(), lr=t.lr_discriminator,
                                                      betas=(0.8, 0.99), eps=1e-9)
        return opts

    def frozen_parameters(self, gen: nn.Module) -> set:
        """``id``s of the parameters under ``train.freeze``'s module paths (an unknown path is an error)."""
        modules = dict(gen.named_modules())
        frozen = set()
        for path in self.cfg.train.freeze:
            if path not in modules:
                raise ValueError(f"train.freeze: the generator has no module {path!r} (e.g. dec.ups.0, flow)")
            frozen.update(id(p) for p in modules[path].parameters())
        return frozen

    # ------------------------------------------------------------------ steps
    @torch.no_grad()
    def posterior(self, batch) -> Tuple[torch.Tensor, torch.Tensor]:
        """``m_q, logs_q (B, C, Ty)`` of the batch's utterances (frozen encoder: computed once per utterance)."""
        if not hasattr(self, "_posteriors"):
            self._posteriors: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}
        gen = self.unwrap("generator")
        ty = batch["spec"].size(-1)
        m = batch["spec"].new_zeros(len(batch["ids"]), gen.enc_q.out_channels, ty)
        logs = torch.zeros_like(m)
        for b, item_id in enumerate(batch["ids"]):
            n = int(batch["spec_lengths"][b])
            if item_id not in self._posteriors:
                gen.enc_q.eval()
                _, m_q, logs_q, _ = gen.enc_q(batch["spec"][b:b + 1, :, :n], batch["spec_lengths"][b:b + 1])
                self._posteriors[item_id] = (m_q[0], logs_q[0])
            m[b, :, :n], logs[b, :, :n] = self._posteriors[item_id]
        return m, logs

    @torch.no_grad()
    def alignment(self, batch, m_q, logs_q, m_p, logs_p, x_mask, y_mask) -> torch.Tensor:
        """Token index of every frame ``(B, Ty)`` long: the monotonic alignment of the utterance's posterior with
        its text prior, searched once per utterance (its first step) and then kept.

        Why kept: the posterior encoder is frozen and the flow and text encoder move slowly at fine-tuning
        rates, so the alignment hardly changes, and searching it needs the flow over the whole utterance, which
        cost more than the rest of the step together; with it kept, the step runs the flow on a window."""
        if not hasattr(self, "_alignments"):
            self._alignments: Dict[str, torch.Tensor] = {}
        gen = self.unwrap("generator")
        missing = [b for b, item_id in enumerate(batch["ids"]) if item_id not in self._alignments]
        if missing:
            z = (m_q + torch.randn_like(m_q) * torch.exp(logs_q)) * y_mask
            z_p = gen.flow(z[missing], y_mask[missing])
            attn = search_alignment(z_p, m_p[missing], logs_p[missing], x_mask[missing], y_mask[missing])
            for row, b in enumerate(missing):
                n = int(batch["spec_lengths"][b])
                self._alignments[batch["ids"][b]] = attn[row, 0, :n].argmax(-1)
        index = torch.zeros(m_q.size(0), m_q.size(-1), dtype=torch.long, device=m_q.device)
        for b, item_id in enumerate(batch["ids"]):
            frames = self._alignments[item_id]
            index[b, : frames.numel()] = frames
        return index

    def windows(self, y_len: torch.Tensor, margin: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """Random decoder segments and the flow windows around them: ``(segment starts (B,), window starts (B,),
        window frames)``; a window reaches ``margin`` frames past each side of its segment where the utterance
        allows (the flow's receptive field, so the segment's latents are those of the whole utterance)."""
        seg = self.unwrap("generator").segment_frames
        starts = (torch.rand(y_len.size(0), device=y_len.device) * (y_len - seg + 1).clamp_min(1)).long()
        width = min(int(y_len.max()), seg + 2 * margin)
        win_starts = torch.minimum((starts - margin).clamp_min(0), (y_len - width).clamp_min(0))
        return starts, win_starts, width

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        t, hop = self.cfg.train, self.cfg.data.hop_length
        gen = self.unwrap("generator")
        gen.enc_q.eval()
        gen.dp.eval()
        m_q, logs_q = self.posterior(batch)
        y_len = batch["spec_lengths"]
        y_mask = (torch.arange(m_q.size(-1), device=m_q.device)[None] < y_len[:, None]).unsqueeze(1).to(m_q.dtype)
        with torch.set_grad_enabled(t.lr_text_encoder > 0):
            _, m_p, logs_p, x_mask = gen.enc_p(batch["text"], batch["text_lengths"])
        token = self.alignment(batch, m_q, logs_q, m_p.detach(), logs_p.detach(), x_mask, y_mask)
        starts, win_starts, width = self.windows(y_len, context_frames(gen.flow))
        frames = win_starts[:, None] + torch.arange(width, device=m_q.device)[None]  # (B, W)
        w_mask = (frames < y_len[:, None]).unsqueeze(1).to(m_q.dtype)
        frames = frames.clamp_max(m_q.size(-1) - 1)
        pick = lambda x: torch.gather(x, 2, frames[:, None].expand(-1, x.size(1), -1))  # noqa: E731 (B, C, W)
        m_q, logs_q = pick(m_q), pick(logs_q)
        tokens = torch.gather(token, 1, frames)[:, None].expand(-1, m_p.size(1), -1)
        m_frames, logs_frames = torch.gather(m_p, 2, tokens), torch.gather(logs_p, 2, tokens)
        z = (m_q + torch.randn_like(m_q) * torch.exp(logs_q)) * w_mask
        terms: Dict[str, torch.Tensor] = {}
        if t.lr_flow > 0 or t.lr_text_encoder > 0:
            z_p = gen.flow(z, w_mask)
            terms["loss_kl"] = kl_loss(z_p, logs_q, m_frames, logs_frames, w_mask) * t.c_kl
        if t.prior_latents > 0:
            z = self.prior_path_latents(z, m_frames, logs_frames, w_mask)
        z_slice = slice_segments(z, starts - win_starts, gen.segment_frames)
        y_hat = gen.dec(z_slice)
        y = slice_segments(batch["wav"], starts * hop, t.segment_samples)
        mel_fn = self.frozen_modules["mel"]
        terms["loss_mel"] = mel_l1_loss(mel_fn(y.squeeze(1)), mel_fn(y_hat.squeeze(1).float())) * t.c_mel
        use_disc = "discriminator" in self.models and self.step >= t.disc_start_step
        if "discriminator" not in self.models:
            return self._generator_only(terms)
        return adversarial_step(self, y, y_hat, terms, use_discriminator=use_disc)

    def prior_path_latents(self, z_q: torch.Tensor, m_frames: torch.Tensor, logs_frames: torch.Tensor,
                           mask: torch.Tensor) -> torch.Tensor:
        """Decoder inputs ``(B, C, W)``: for a ``prior_latents`` share of the items, the latent inference would
        decode for the same text and timing (``flow⁻¹(m_p + ε·σ_p·T)`` on the recording's alignment), else the
        posterior latent ``z_q``.

        Why: the decoder then learns to render what it will be given when the voice speaks. A minute of a new
        reader's audio encoded by a posterior built on the base voice is out of its distribution; trained only
        on those latents the decoder meets other latents at inference and slurs (Whisper WER up 10-20 points
        on LibriSpeech readers). The prior path's latents carry the text's phonetic content, so the mel loss on
        them also teaches the decoder (and, through the inverse flow, the flow) to keep it."""
        t = self.cfg.train
        gen = self.unwrap("generator")
        chosen = (torch.rand(z_q.size(0), device=z_q.device) < t.prior_latents).to(z_q.dtype)[:, None, None]
        if not bool(chosen.any()):
            return z_q
        z_p = m_frames + torch.randn_like(m_frames) * torch.exp(logs_frames) * t.prior_noise_scale
        z_prior = gen.flow(z_p * mask, mask, reverse=True) * mask
        return chosen * z_prior + (1 - chosen) * z_q

    def _generator_only(self, terms: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        total = sum(terms.values())
        self.optimize("generator", total)
        return {**terms, "loss_gen_total": total}

    def after_step(self) -> None:
        average = self.weight_average()
        if average is not None:
            average.update()
        due = evaluation_due(self, self.on_eval, self.eval_every)  # swap ~30 M weights in only to evaluate
        with average.swapped_in() if average is not None and due else contextlib.nullcontext():
            evaluate_during_training(self, self.on_eval, self.eval_every)

    def weight_average(self) -> Optional[WeightAverage]:
        """The moving average of the trained generator weights (``train.ema_decay``), or None without one."""
        if self.cfg.train.ema_decay <= 0:
            return None
        if not hasattr(self, "_average"):
            self._average = WeightAverage(self.unwrap("generator"), self.cfg.train.ema_decay)
        return self._average

    def keep_average(self) -> None:
        """After training: the averaged weights become the generator's (what is scored last and exported)."""
        average = self.weight_average()
        if average is not None and average.average:
            average.copy_to_module()

    def trainer_state(self) -> Dict:
        state = super().trainer_state()
        average = self.weight_average()
        if average is not None and average.average:
            state["weight_average"] = average.state_dict()
        return state

    def _restore_trainer_state(self, state) -> None:
        super()._restore_trainer_state(state)
        average = self.weight_average()
        if average is not None and "weight_average" in state:
            average.load_state_dict(state["weight_average"])
