"""Rebuild a VITS posterior encoder that a voice was shipped without (Piper's ONNX drops ``enc_q``).

Fine-tuning VITS on recordings needs ``enc_q``: it turns each recording's linear spectrogram into the latent
``z`` the decoder learns to render in the new voice and the flow maps onto the text prior. A converted Piper
voice carries none, and a freshly initialised one gives KL ≈ 600 at step 1, whose gradients wreck the
pretrained text encoder and flow within tens of steps (issue 46's probe).

The teacher knows the inverse it needs: when the voice speaks a sentence, the latent it decodes
(``z = flow⁻¹(m_p + ε·σ_p)``) and the waveform it produces form an exact (audio, latent) pair. So the voice
reads a text list once (:func:`speak_teacher_corpus`), and a fresh ``enc_q`` learns to map the spectrogram of
each waveform back to its latent by the Gaussian negative log-likelihood of the teacher's ``z`` under
``N(m_q, σ_q²)`` (:func:`distil_posterior`). The mean learns the decoder's inverse; ``σ_q`` learns how exactly
a spectrogram determines ``z``, which is what the VITS posterior means.

The result is cached once per base voice: the key is the sha256 of the voice's weights and of the settings
(:func:`cached_posterior`), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from models.tts.vits.model import VITS
from processors.spectrogram import VitsLinearSpectrogram
from utils.io import atomic_path
from utils.rng import seeded

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class DistillSettings:
    """How the posterior encoder is rebuilt (part of the cache key)."""

    sentences: int = 200  # texts the base voice reads (the teacher corpus: ~8.6 min of the joe voice)
    steps: int = 400  # optimizer steps (the held-out NLL flattens out after ~350 at these settings)
    batch_items: int = 8
    crop_frames: int = 160  # random window per item (enc_q sees ±32 frames: crops lose nothing)
    lr: float = 1e-3
    noise_scale: float = 0.667  # the voice's usual prior temperature: latents as it speaks them
    noise_scale_w: float = 0.8
    seed: int = 1234


@dataclass
class TeacherUtterance:
    """One sentence spoken by the base voice: ``spec (F, T)`` of its waveform and the latent ``z (C, T)`` it
    was decoded from (frame t of one is frame t of the other)."""

    spec: torch.Tensor
    z: torch.Tensor


@torch.no_grad()
def speak_teacher_corpus(model: VITS, id_lists: Sequence[Sequence[int]], spectrogram: VitsLinearSpectrogram,
                         settings: DistillSettings, progress: Optional[Callable[[int, int], None]] = None
                         ) -> List[TeacherUtterance]:
    """The base voice reads every id list; returns its (spectrogram, latent) pairs."""
    model.eval()
    out: List[TeacherUtterance] = []
    gen = torch.Generator().manual_seed(settings.seed)
    for index, ids in enumerate(id_lists):
        x = torch.tensor([list(ids)], dtype=torch.long)
        with seeded(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)), x.device):
            result = model.infer(x, torch.tensor([x.size(1)]), noise_scale=settings.noise_scale,
                                 noise_scale_w=settings.noise_scale_w)
        frames = int(result["lengths"][0]) // model.hop_length
        wav = result["wav"][0, :, : frames * model.hop_length]
        spec = spectrogram(wav)[0]  # (F, frames): uncentred STFT, one frame per hop
        n = min(frames, spec.size(-1))
        out.append(TeacherUtterance(spec[:, :n].clone(), result["z"][0, :, :n].clone()))
        if progress is not None:
            progress(index + 1, len(id_lists))
    return out


def gaussian_nll(z: torch.Tensor, m: torch.Tensor, logs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (nats per value, without the constant) of ``z`` under ``N(m, exp(logs)²)``;
    all ``(B, C, T)``, ``mask (B, 1, T)``."""
    nll = logs + 0.5 * ((z - m) * torch.exp(-logs)) ** 2
    return torch.sum(nll * mask) / (torch.sum(mask) * z.size(1))


def _crop_batch(items: Sequence[TeacherUtterance], crop: int, gen: torch.Generator
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random windows of at most ``crop`` frames: ``spec (B, F, T)``, ``z (B, C, T)``, lengths ``(B,)``."""
    lengths = [min(crop, it.spec.size(-1)) for it in items]
    width = max(lengths)
    spec = torch.zeros(len(items), items[0].spec.size(0), width)
    z = torch.zeros(len(items), items[0].z.size(0), width)
    for b, (it, n) in enumerate(zip(items, lengths)):
        start = int(torch.randint(0, it.spec.size(-1) - n + 1, (1,), generator=gen))
        spec[b, :, :n] = it.spec[:, start:start + n]
        z[b, :, :n] = it.z[:, start:start + n]
    return spec, z, torch.tensor(lengths)


def distil_posterior(encoder: nn.Module, corpus: Sequence[TeacherUtterance], settings: DistillSettings,
                     progress: Optional[Callable[[int, int, float], None]] = None) -> Dict[str, float]:
    """Train ``encoder`` (a VITS ``PosteriorEncoder``) on the teacher pairs; returns its final fit on the
    held-out tenth of the corpus: ``nll`` and ``l1`` (|m_q − z| per value) — what callers log and test."""
    held = max(1, len(corpus) // 10)
    train, valid = list(corpus[held:]), list(corpus[:held])
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.AdamW(encoder.parameters(), lr=settings.lr, betas=(0.8, 0.99), eps=1e-9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.steps, pct_start=0.05)
    encoder.train()
    for step in range(settings.steps):
        picks = torch.randint(0, len(train), (settings.batch_items,), generator=gen).tolist()
        spec, z, lengths = _crop_batch([train[i] for i in picks], settings.crop_frames, gen)
        _, m_q, logs_q, mask = encoder(spec, lengths)
        loss = gaussian_nll(z, m_q, logs_q, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 5.0)
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, settings.steps, float(loss.detach()))
    return posterior_fit(encoder, valid)


@torch.no_grad()
def posterior_fit(encoder: nn.Module, corpus: Sequence[TeacherUtterance]) -> Dict[str, float]:
    """``nll`` and ``l1`` of the encoder's posterior against the teacher latents of ``corpus`` (whole items)."""
    encoder.eval()
    nll = l1 = 0.0
    for it in corpus:
        lengths = torch.tensor([it.spec.size(-1)])
        _, m_q, logs_q, mask = encoder(it.spec.unsqueeze(0), lengths)
        nll += float(gaussian_nll(it.z.unsqueeze(0), m_q, logs_q, mask))
        l1 += float((m_q - it.z.unsqueeze(0)).abs().mean())
    return {"nll": nll / len(corpus), "l1": l1 / len(corpus)}


def cache_key(weights_sha256: str, settings: DistillSettings) -> str:
    """What the cached encoder depends on: the base voice's weights and the distillation settings."""
    blob = json.dumps({"weights": weights_sha256, "settings": asdict(settings), "format": FORMAT_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_posterior(model: VITS, weights_sha256: str, id_lists: Sequence[Sequence[int]], cache_dir: Path,
                     spectrogram: VitsLinearSpectrogram, settings: DistillSettings,
                     on_progress: Optional[Callable[[str, int, int], None]] = None) -> Dict[str, float]:
    """Load ``model.enc_q`` from the cache, or rebuild it (teacher corpus + distillation) and cache it.

    Returns the encoder's held-out fit (``nll``, ``l1``) and ``cached`` (1.0 when it came from the cache)."""
    from safetensors.torch import load_file, save_file

    folder = Path(cache_dir) / cache_key(weights_sha256, settings)
    weights, report = folder / "enc_q.safetensors", folder / "fit.json"
    if weights.is_file() and report.is_file():
        model.enc_q.load_state_dict(load_file(str(weights)), strict=True)
        log.info("posterior encoder from the cache %s", folder)
        return {**json.loads(report.read_text()), "cached": 1.0}
    corpus = speak_teacher_corpus(model, id_lists[: settings.sentences], spectrogram, settings,
                                  None if on_progress is None else lambda i, n: on_progress("teacher corpus", i, n))
    frames = sum(it.spec.size(-1) for it in corpus)
    log.info("teacher corpus: %d sentences, %.1f min of the base voice", len(corpus),
             frames * model.hop_length / spectrogram_rate(model) / 60)
    with seeded(settings.seed):
        fresh = type(model.enc_q)(model.enc_q.in_channels, model.enc_q.out_channels, model.config.hidden_channels,
                                  5, 1, 16)
    model.enc_q.load_state_dict(fresh.state_dict())
    fit = distil_posterior(model.enc_q, corpus, settings,
                           None if on_progress is None else lambda i, n, _: on_progress("posterior encoder", i, n))
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights) as tmp:
        save_file({k: v.contiguous() for k, v in model.enc_q.state_dict().items()}, str(tmp))
    with atomic_path(report) as tmp:
        Path(tmp).write_text(json.dumps({**fit, "sentences": len(corpus)}))
    if not math.isfinite(fit["nll"]):
        raise RuntimeError(f"posterior distillation diverged (held-out NLL {fit['nll']})")
    return {**fit, "cached": 0.0}


def spectrogram_rate(model: VITS) -> float:
    """Nominal sample rate for minutes in logs (VITS configs are 22.05 kHz unless stated otherwise)."""
    return float(getattr(model, "sample_rate", 22050))
