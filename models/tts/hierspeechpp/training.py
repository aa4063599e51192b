"""The reconstructed training forward of the HierSpeech++ synthesizer (never released; see TRAINING.md).

Data flow for one batch (T latent frames at 50 Hz, S = segment frames)::

    style      g   = emb_g(mel, mask)            replaced by emb(0)·sqrt(gin) with prob. uncond_ratio (CFG)
    acoustic   z_a ~ enc_q(linear spec, wave)    dual-audio posterior q(z_a | x)
    semantic   z_sr ~ enc_p(SSL(x), F0)          speaker-related semantic posterior (clean audio)
    prior      (m_l, logs_l) = enc_p_l(SSL(x̃), F0)  speaker-agnostic prior (x̃ = NANSY-perturbed audio)
    BiT-flow   flow:   z_a  <-> enc_p space       KL(q(z_a) ‖ p(z_sr)) both directions
               flow_l: z_sr <-> enc_p_l space     KL(q(z_sr) ‖ p_l) both directions
    prosody    mel_decoder(z_sr) -> first 20 log-mel bins
    decoder    S-frame window of z_a -> sn -> (e, e_ ≈ ln(F0+1) at 200 Hz) -> dec(z_a, e) -> ŷ (320·S samples)

At inference the chain runs top-down exactly as the official ``voice_conversion``: enc_p_l on the *source*
audio -> flow_l⁻¹ -> flow⁻¹ -> sn -> dec, so every module used there is trained by a term above.
The submodules are reached by their official attribute names and call signatures.
:class:`HierSpeechPPForTraining` makes this the model's ``forward`` (so DDP wraps it) without changing a single
state-dict key: its checkpoints are plain official-layout synthesizer weights.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from models.tts.hierspeechpp.losses import hierarchical_kl
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from modules.commons import rand_slice_segments, sequence_mask, slice_segments
from modules.losses import mel_l1_loss

F0_PER_FRAME = 4


def style_with_dropout(model: HierSpeechPPSynthesizer, mel: Tensor, mask: Tensor, uncond_ratio: float) -> tuple[Tensor, Tensor]:
    """Style vector g (B, gin, 1) of each item, with CFG dropout to the null style in training.

    Args:
        mel: (B, n_mels, T) log-mel of the whole utterance; mask: (B, 1, T).
    """
    g = model.emb_g(mel, mask).unsqueeze(-1)
    drop = torch.zeros(g.size(0), dtype=torch.bool, device=g.device)
    if getattr(model, "emb", None) is not None:
        if uncond_ratio > 0.0:
            drop = torch.rand(g.size(0), device=g.device) < uncond_ratio
        # Always in the graph (zero gradient when nothing is dropped) so DDP sees every parameter used.
        g = torch.where(drop.view(-1, 1, 1), model.null_style(g.size(0)).to(g.dtype), g)
    return g, drop


def training_forward(
    model: HierSpeechPPSynthesizer,
    *,
    audio: Tensor,
    linear: Tensor,
    mel: Tensor,
    ssl: Tensor,
    ssl_aug: Tensor,
    log_f0: Tensor,
    lengths: Tensor,
    segment_frames: int,
    hop_length: int = 320,
    prosody_size: int = 20,
    uncond_ratio: float = 0.1,
    uniform: Optional[Tensor] = None,
) -> Dict[str, Tensor]:
    """One generator forward of the hierarchical VAE.

    Args:
        model: a ``SynthesizerTrn`` (official attribute names).
        audio: (B, 1, hop·T) waveform; linear: (B, n_fft//2+1, T) magnitude spectrogram; mel: (B, 80, T) log-mel.
        ssl: (B, 1024, T) SSL layer-7 features of the clean audio; ssl_aug: (B, 1024, T) of the perturbed audio.
        log_f0: (B, 1, 4T) ln(F0 + 1), unvoiced 0.
        lengths: (B,) valid frames.
        segment_frames: S, window given to the generator (192 = 61,440 samples in the released config).
        uniform: optional (B,) draws in [0, 1) for the window starts (tests).

    Returns:
        ``audio_hat`` / ``audio_slice`` (B, 1, hop·S) generated and real windows, ``starts`` (B,) in frames,
        ``uncond`` (B,) items given the null style, and the unweighted scalar terms ``kl_a``, ``kl_a_rev``,
        ``kl_s``, ``kl_s_rev``, ``f0``, ``prosody``.
    """
    frames = ssl.size(-1)
    check_frames(frames, audio=audio, linear=linear, mel=mel, ssl_aug=ssl_aug, log_f0=log_f0, hop_length=hop_length)
    mask = sequence_mask(lengths, frames).unsqueeze(1).to(ssl.dtype)
    g, uncond = style_with_dropout(model, mel, mask, uncond_ratio)

    acoustic = model.enc_q(linear, audio, lengths, g=g)
    semantic = model.enc_p(ssl, log_f0, lengths, g=g)
    agnostic = model.enc_p_l(ssl_aug, log_f0, lengths, g=g)
    kl = kl_terms(model, acoustic, semantic, agnostic, mask, g)
    prosody_hat = model.mel_decoder(semantic[0], mask, g=g)
    prosody = mel_l1_loss(mel[:, :prosody_size], prosody_hat, mask)

    audio_hat, audio_slice, starts, f0 = decoded_window(model, acoustic[0], g, audio, log_f0, lengths, segment_frames,
                                                        hop_length, uniform)
    return {"audio_hat": audio_hat, "audio_slice": audio_slice, "starts": starts, "uncond": uncond, **kl, "f0": f0,
            "prosody": prosody}


def check_frames(frames: int, *, audio: Tensor, linear: Tensor, mel: Tensor, ssl_aug: Tensor, log_f0: Tensor,
                 hop_length: int) -> None:
    """ValueError unless every input of :func:`training_forward` spans the ``frames`` latent frames of ``ssl``."""
    expected = {"linear": linear.size(-1), "mel": mel.size(-1), "ssl_aug": ssl_aug.size(-1)}
    for name, size in expected.items():
        if size != frames:
            raise ValueError(f"training_forward: {name} has {size} frames, ssl has {frames}")
    if audio.size(-1) != hop_length * frames or log_f0.size(-1) != F0_PER_FRAME * frames:
        raise ValueError(
            f"training_forward: audio {audio.size(-1)} samples / log_f0 {log_f0.size(-1)} frames do not match "
            f"{frames} latent frames (expected {hop_length * frames} / {F0_PER_FRAME * frames})"
        )


Posterior = Tuple[Tensor, Tensor, Tensor, Tensor]  # (z, m, logs, mask) of an encoder, each (B, C, T) but the mask


def kl_terms(model: HierSpeechPPSynthesizer, acoustic: Posterior, semantic: Posterior, agnostic: Posterior,
             mask: Tensor, g: Tensor) -> Dict[str, Tensor]:
    """The four KL terms of the hierarchy (``kl_a``, ``kl_a_rev``, ``kl_s``, ``kl_s_rev``), each flow trained in
    both directions; ``acoustic`` from enc_q, ``semantic`` from enc_p, ``agnostic`` from enc_p_l."""
    z_a, m_q, logs_q, _ = acoustic
    z_sr, m_sr, logs_sr, _ = semantic
    z_l, m_l, logs_l, _ = agnostic
    # Acoustic level: z_a <-> enc_p space (the "BiT" flow is trained in both directions).
    kl_a = hierarchical_kl(
        z_forward=model.flow(z_a, mask, g=g),
        logs_posterior=logs_q,
        m_prior=m_sr,
        logs_prior=logs_sr,
        z_reverse=model.flow(z_sr, mask, g=g, reverse=True),
        m_posterior=m_q,
        mask=mask,
    )
    # Semantic level: z_sr <-> speaker-agnostic prior of the perturbed path.
    kl_s = hierarchical_kl(
        z_forward=model.flow_l(z_sr, mask, g=g),
        logs_posterior=logs_sr,
        m_prior=m_l,
        logs_prior=logs_l,
        z_reverse=model.flow_l(z_l, mask, g=g, reverse=True),
        m_posterior=m_sr,
        mask=mask,
    )
    return {"kl_a": kl_a["forward"], "kl_a_rev": kl_a["reverse"], "kl_s": kl_s["forward"], "kl_s_rev": kl_s["reverse"]}


def decoded_window(model: HierSpeechPPSynthesizer, z_a: Tensor, g: Tensor, audio: Tensor, log_f0: Tensor,
                   lengths: Tensor, segment_frames: int, hop_length: int,
                   uniform: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """A random window of ``min(segment_frames, shortest item)`` frames of ``z_a (B, C, T)`` through sn and the
    decoder: ``audio_hat`` / ``audio_slice`` (B, 1, hop·S), ``starts`` (B,) in frames and the F0 L1 term."""
    size = min(segment_frames, int(lengths.min()))
    z_slice, starts = rand_slice_segments(z_a, lengths, size, uniform=uniform)
    e, f0_hat = model.sn(z_slice, g=g)
    f0_slice = slice_segments(log_f0, starts * F0_PER_FRAME, size * F0_PER_FRAME)
    audio_hat = model.dec(z_slice, e, g=g)
    audio_slice = slice_segments(audio, starts * hop_length, size * hop_length)
    return audio_hat, audio_slice, starts, mel_l1_loss(f0_slice, f0_hat)


class HierSpeechPPForTraining(HierSpeechPPSynthesizer):
    """The synthesizer whose ``forward`` is :func:`training_forward` (same parameters and state-dict keys)."""

    def forward(self, **inputs) -> Dict[str, Tensor]:  # type: ignore[override]
        return training_forward(self, **inputs)
