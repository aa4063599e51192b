"""HierSpeech++ Text-to-Vec (official ``ttv_v1/t2w2v_transformer.SynthesizerTrn``), checkpoint compatible.

Attribute names = official state-dict prefixes::

    enc_q               PosteriorEncoder(1024 -> inter, WaveNet hidden, 16 layers, k5)   SSL -> posterior z
    enc_p               TextEncoder                                                       phonemes -> prior
    flow                BiTFlow (4 heads)                                                 z <-> prior space
    w2v_decoder         W2VDecoder (WaveNet 2*inter, 8 layers)                            z -> SSL features
    emb_g               StyleEncoder                                                      prompt log-mel -> style
    dp                  StochasticDurationPredictor                                       token durations
    pp                  PitchPredictor                                                    SSL -> ln(F0 + 1) @ 4x
    phoneme_classifier  Conv1d(inter -> 178, no bias)                                     CTC head on z

Training (:meth:`forward`) aligns the posterior (through the flow) with the text prior by monotonic
alignment search and returns everything the losses need; inference (:meth:`infer_noise_control`,
:meth:`infer`) samples durations, expands the prior, inverts the flow and decodes SSL features and F0.
Every random draw can be injected (``noise`` arguments) to replay recorded runs.

Padding: ``leaky_padding=True`` reproduces the official batch behaviour (flow attention and style pooling
see padded frames); the default masks them so results do not depend on batch composition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.ttv.hierspeechpp_ttv.config import TTVConfig
from models.ttv.hierspeechpp_ttv.modules import PitchPredictor, TextEncoder, W2VDecoder
from modules.commons import generate_path, rand_slice_segments, sequence_mask
from modules.dit_flow import BiTFlow
from modules.duration_predictor import StochasticDurationPredictor
from modules.monotonic_align import search_alignment
from modules.onednn_linear import use_onednn_linear
from modules.posterior_encoder import PosteriorEncoder
from modules.style_encoder import StyleEncoder
from modules.weight_norm import fold_weight_norm
from utils.memory import keep_freed_memory
from utils.registry import register

PITCH_SEGMENT = 60  # latent frames of the ground-truth SSL slice the pitch predictor trains on
F0_PER_FRAME = 4  # F0 frames (hop 80) per latent frame (hop 320)


@dataclass
class TTVTrainOutput:
    """What :meth:`TextToVec.forward` returns (shapes for B items, T frames, Tx tokens, C = inter)."""

    w2v_predicted: torch.Tensor  # (B, 1024, T)
    z: torch.Tensor  # (B, C, T) posterior sample
    z_p: torch.Tensor  # (B, C, T) flow(z)
    m_q: torch.Tensor
    logs_q: torch.Tensor
    m_p: torch.Tensor  # (B, C, T) prior expanded by the alignment
    logs_p: torch.Tensor
    y_mask: torch.Tensor  # (B, 1, T)
    pitch_predicted: torch.Tensor  # (B, 1, 4 * 60)
    ids_slice: torch.Tensor  # (B,) slice starts in latent frames
    l_length: torch.Tensor  # (B,) SDP NLL / sum(text mask)
    phoneme_logits: torch.Tensor  # (B, n_vocab, T)
    attn: torch.Tensor  # (B, 1, T, Tx)
    g: torch.Tensor  # (B, 256, 1)
    x_mask: torch.Tensor  # (B, 1, Tx)


@register("model", "hierspeechpp_ttv")
class TextToVec(BuiltFromConfig, nn.Module):
    """HierSpeech++ TTV; built by :func:`models.base.building.build_model` / :meth:`from_config` from a
    :class:`TTVConfig` (the fields' meaning and defaults are there)."""

    config_class = TTVConfig

    def __init__(self, *, inter_channels: int, hidden_channels: int, n_vocab: int, ssl_channels: int,
                 n_mel_channels: int, gin_channels: int, leaky_padding: bool) -> None:
        super().__init__()
        self.config = cfg = config_of_arguments(TTVConfig, locals())
        inter, hidden, gin = cfg.inter_channels, cfg.hidden_channels, cfg.gin_channels
        self.enc_q = PosteriorEncoder(cfg.ssl_channels, inter, hidden, 5, 1, 16, gin_channels=gin)
        self.enc_p = TextEncoder(cfg.n_vocab, inter, gin)
        self.flow = BiTFlow(inter, hidden, 5, 3, 4, gin, n_heads=4, p_dropout=0.1, leaky_padding=cfg.leaky_padding)
        self.w2v_decoder = W2VDecoder(inter, 2 * inter, 5, 1, 8, cfg.ssl_channels, gin, p_dropout=0.1)
        self.emb_g = StyleEncoder(in_dim=cfg.n_mel_channels, hidden_dim=256, out_dim=gin,
                                  leaky_padding=cfg.leaky_padding)
        self.dp = StochasticDurationPredictor(inter, inter, 3, 0.5, 4, gin_channels=gin)
        self.pp = PitchPredictor(cfg.ssl_channels, 256, gin)
        self.phoneme_classifier = nn.Conv1d(inter, cfg.n_vocab, 1, bias=False)

    def set_leaky_padding(self, leaky: bool) -> None:
        """True: official padding leaks (flow attention, style pooling); False: padding-exact batching."""
        self.config.leaky_padding = leaky
        self.flow.set_leaky_padding(leaky)
        self.emb_g.leaky_padding = leaky

    def prepare_for_inference(self) -> "TextToVec":
        """Eval mode, weight norm folded, linear layers through oneDNN on CPU (modules/onednn_linear.py)."""
        self.eval()
        fold_weight_norm(self)
        use_onednn_linear(self)
        keep_freed_memory()
        return self

    # ------------------------------------------------------------------ pieces
    def style(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """Prompt log-mel (B, 80, Tm) + lengths (B,) -> style (B, 256, 1)."""
        mask = sequence_mask(mel_lengths, mel.size(2)).unsqueeze(1).to(mel.dtype)
        return self.emb_g(mel, mask).unsqueeze(-1)

    # ------------------------------------------------------------------ training
    def forward(self, w2v: torch.Tensor, length: torch.Tensor, text: torch.Tensor, text_length: torch.Tensor,
                mel: torch.Tensor, noise_q: Optional[torch.Tensor] = None,
                slice_uniform: Optional[torch.Tensor] = None, noise_dur: Optional[torch.Tensor] = None
                ) -> TTVTrainOutput:
        """Training pass.

        Args:
            w2v: (B, 1024, T) SSL features; length: (B,) frames; text: (B, Tx) blank-interleaved ids;
            text_length: (B,); mel: (B, 80, T) log-mel of the same utterances (style source).
            noise_q, slice_uniform, noise_dur: optional replacements of the three random draws, in the
                official order: posterior sample (B, C, T), pitch-slice uniforms (B,), SDP e_q (B, 2, Tx).
        """
        if w2v.size(2) < PITCH_SEGMENT:
            raise ValueError(f"TTV training needs at least {PITCH_SEGMENT} frames per batch, got {w2v.size(2)}")
        y_mask = sequence_mask(length, mel.size(2)).unsqueeze(1).to(mel.dtype)
        g = self.emb_g(mel, y_mask).unsqueeze(-1)
        x, m_p, logs_p, x_mask = self.enc_p(text, text_length, g)
        z, m_q, logs_q, _ = self.enc_q(w2v, length, g=g, noise=noise_q)
        phoneme_logits = self.phoneme_classifier(z * y_mask)
        w2v_predicted = self.w2v_decoder(z, y_mask, g)
        z_p = self.flow(z, y_mask, g)
        w2v_slice, ids_slice = rand_slice_segments(w2v, length, PITCH_SEGMENT, uniform=slice_uniform)
        pitch_predicted = self.pp(w2v_slice, g)
        attn = search_alignment(z_p, m_p, logs_p, x_mask, y_mask)
        durations = attn.sum(2)
        l_length = self.dp(x, x_mask, durations, g=g, noise=noise_dur) / torch.sum(x_mask)
        m_p = torch.matmul(attn.squeeze(1), m_p.transpose(1, 2)).transpose(1, 2)
        logs_p = torch.matmul(attn.squeeze(1), logs_p.transpose(1, 2)).transpose(1, 2)
        return TTVTrainOutput(w2v_predicted, z, z_p, m_q, logs_q, m_p, logs_p, y_mask, pitch_predicted, ids_slice,
                              l_length, phoneme_logits, attn, g, x_mask)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def generate(self, text: torch.Tensor, text_length: torch.Tensor, g: torch.Tensor, noise_scale: float = 0.333,
                 noise_scale_w: float = 1.0, length_scale: float = 1.0, noise_dur: Optional[torch.Tensor] = None,
                 noise_prior: Optional[torch.Tensor] = None, return_details: bool = False,
                 generator: Optional[torch.Generator] = None):
        """Core of inference under a given style ``g`` (B, 256, 1).

        Noise: ``noise_dur`` (B, 2, Tx) for the duration predictor and ``noise_prior`` (B, C, T') for the prior
        sample replace the draws; otherwise they come from ``generator`` (CPU) or the global RNG.

        Returns ``(w2v (B, 1024, T'), pitch (B, 1, 4T'), y_lengths (B,))`` and, with ``return_details``, a dict
        of intermediates (text hidden, m_p, logs_p, logw, w_ceil, z).
        """
        x, m_p_text, logs_p_text, x_mask = self.enc_p(text, text_length, g)
        if noise_dur is None and generator is not None:
            noise_dur = torch.randn(x.size(0), 2, x.size(2), generator=generator).to(x)
        logw = self.dp(x, x_mask, g=g, reverse=True, noise_scale=noise_scale_w, noise=noise_dur)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)
        y_lengths = torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()
        y_mask = sequence_mask(y_lengths, None).unsqueeze(1).to(x_mask.dtype)
        attn = generate_path(w_ceil, x_mask.unsqueeze(2) * y_mask.unsqueeze(-1))
        m_p = torch.matmul(attn.squeeze(1), m_p_text.transpose(1, 2)).transpose(1, 2)
        logs_p = torch.matmul(attn.squeeze(1), logs_p_text.transpose(1, 2)).transpose(1, 2)
        if noise_prior is None:
            noise_prior = (torch.randn(m_p.shape, generator=generator).to(m_p) if generator is not None
                           else torch.randn_like(m_p))
        z_p = m_p + noise_prior * torch.exp(logs_p) * noise_scale
        z = self.flow(z_p, y_mask, g, reverse=True)
        w2v = self.w2v_decoder(z, y_mask, g)
        pitch = self.pp(w2v, g)
        if not return_details:
            return w2v, pitch, y_lengths
        details = {"text_hidden": x, "m_p": m_p_text, "logs_p": logs_p_text, "logw": logw, "w_ceil": w_ceil,
                   "z": z, "y_mask": y_mask}
        return w2v, pitch, y_lengths, details

    @torch.no_grad()
    def infer_noise_control(self, text: torch.Tensor, text_length: torch.Tensor, mel: torch.Tensor,
                            mel_length: torch.Tensor, noise_scale: float = 0.333, noise_scale_w: float = 1.0,
                            length_scale: float = 1.0, denoise_ratio: float = 0.0, **noise
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Official API: ``mel`` is the 2-row prompt batch [original, denoised]; the style is
        ``(1 - denoise_ratio) * g[0] + denoise_ratio * g[1]``. Returns ``(w2v (1,1024,T'), pitch (1,1,4T'))``."""
        if mel.size(0) != 2:
            raise ValueError(f"infer_noise_control expects a 2-row prompt mel [original, denoised], got {mel.size(0)}")
        g = self.style(mel, mel_length)
        g = (1 - denoise_ratio) * g[:1] + denoise_ratio * g[1:]
        w2v, pitch, _ = self.generate(text, text_length, g, noise_scale, noise_scale_w, length_scale, **noise)
        return w2v, pitch

    @torch.no_grad()
    def infer(self, text: torch.Tensor, text_length: torch.Tensor, mel: torch.Tensor, mel_length: torch.Tensor,
              noise_scale: float = 1.0, noise_scale_w: float = 1.0, length_scale: float = 1.0, **noise
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Official API without prompt interpolation: one style per item. Returns ``(w2v, pitch)``."""
        w2v, pitch, _ = self.generate(text, text_length, self.style(mel, mel_length), noise_scale, noise_scale_w,
                                      length_scale, **noise)
        return w2v, pitch
