"""Stage 2 of Glow-WaveGAN: the Glow-TTS flow acoustic model (jaywalnut310/glow-tts ``FlowGenerator``) on a
``D``-channel latent instead of a mel spectrogram.  Checkpoint compatible with the official code.

Attribute names = official state-dict prefixes::

    encoder   GlowTextEncoder   emb, pre (ConvReluNorm prenet), encoder (relative-position Transformer),
                                proj_m, proj_s (learned prior only), proj_w (duration predictor)
    decoder   GlowDecoder       flows.{3k} ActNorm, {3k+1} InvConvNear, {3k+2} GlowCoupling
    emb_g     Embedding         multi-speaker models only

Alignments are ``(B, 1, Ty, Tx)`` (frames x tokens, as the rest of Echelon; the official code stores the
transpose).  Glow-TTS details kept: LayerNorm epsilon 1e-4, prior statistics from the flowed frames, durations
``ceil(exp(logw) * length_scale)``, frame counts trimmed to multiples of ``n_sqz``.  One deviation: a
multi-speaker duration predictor here sees a detached speaker embedding (the official one back-propagates the
duration loss into ``emb_g``); forward values are identical.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.tts.glow_wavegan.acoustic_config import GlowTTSConfig
from modules.commons import generate_path, sequence_mask
from modules.duration_predictor import DurationPredictor
from modules.glow import GlowDecoder, glow_mle_loss, log_duration_loss
from modules.monotonic_align import search_alignment
from modules.prenet import ConvReluNorm
from modules.transformer import RelPositionEncoder
from utils.registry import register

GLOW_TTS_NORM_EPS = 1e-4
_PRENET_KERNEL, _PRENET_LAYERS, _PRENET_DROPOUT = 5, 3, 0.5


class GlowTextEncoder(nn.Module):
    """Symbol ids ``(B, Tx)`` -> prior mean / log-std ``(B, D, Tx)``, log-durations ``(B, 1, Tx)``, mask ``(B, 1, Tx)``."""

    def __init__(self, n_vocab: int, out_channels: int, hidden: int, filter_channels: int, filter_channels_dp: int,
                 kernel_size: int, n_heads: int, n_layers: int, p_dropout: float, window_size: Optional[int],
                 block_length: Optional[int], mean_only: bool, prenet: bool, gin_channels: int):  # fmt: skip
        super().__init__()
        self.hidden_channels = hidden
        self.mean_only = mean_only
        self.emb = nn.Embedding(n_vocab, hidden)
        nn.init.normal_(self.emb.weight, 0.0, hidden**-0.5)
        self.pre = ConvReluNorm(hidden, hidden, hidden, _PRENET_KERNEL, _PRENET_LAYERS, _PRENET_DROPOUT,
                                GLOW_TTS_NORM_EPS) if prenet else None
        self.encoder = RelPositionEncoder(hidden, filter_channels, n_heads, n_layers, kernel_size, p_dropout,
                                          window_size=window_size, norm_eps=GLOW_TTS_NORM_EPS, block_length=block_length)
        self.proj_m = nn.Conv1d(hidden, out_channels, 1)
        if not mean_only:
            self.proj_s = nn.Conv1d(hidden, out_channels, 1)
        self.proj_w = DurationPredictor(hidden + gin_channels, filter_channels_dp, kernel_size, p_dropout,
                                        norm_eps=GLOW_TTS_NORM_EPS)

    def forward(self, x: torch.Tensor, x_lengths: torch.Tensor, g: Optional[torch.Tensor] = None):
        if x.dim() != 2:
            raise ValueError(f"GlowTextEncoder: expected ids (B, T), got shape {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.emb.num_embeddings):
            raise ValueError(f"GlowTextEncoder: symbol ids must lie in [0, {self.emb.num_embeddings}), got "
                             f"[{int(x.min())}, {int(x.max())}]")
        h = (self.emb(x) * math.sqrt(self.hidden_channels)).transpose(1, 2)  # (B, H, Tx)
        x_mask = sequence_mask(x_lengths, h.size(2)).unsqueeze(1).to(h.dtype)
        if self.pre is not None:
            h = self.pre(h, x_mask)
        h = self.encoder(h, x_mask)
        x_m = self.proj_m(h) * x_mask
        x_logs = self.proj_s(h) * x_mask if not self.mean_only else torch.zeros_like(x_m)
        dp_in = h if g is None else torch.cat([h, g.expand(-1, -1, h.size(-1))], 1)
        logw = self.proj_w(dp_in, x_mask)  # the predictor detaches its input (no gradient into the encoder)
        return x_m, x_logs, logw, x_mask


def expand_to_frames(attn: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
    """Token statistics ``(B, C, Tx)`` -> frames ``(B, C, Ty)`` through the alignment ``(B, 1, Ty, Tx)``."""
    return torch.matmul(attn.squeeze(1), stats.transpose(1, 2)).transpose(1, 2)


@register("model", "glow_wavegan_acoustic")
class GlowTTS(BuiltFromConfig, nn.Module):
    """Glow-TTS on a latent target; built by :func:`models.base.building.build_model` / :meth:`from_config` from a
    :class:`GlowTTSConfig` (the official ``FlowGenerator`` argument names; meaning and defaults are there)."""

    config_class = GlowTTSConfig

    def __init__(self, *, n_vocab: int, out_channels: int, hidden_channels: int, filter_channels: int,
                 filter_channels_dp: int, kernel_size: int, n_heads: int, n_layers_enc: int, p_dropout: float,
                 n_blocks_dec: int, kernel_size_dec: int, dilation_rate: int, n_block_layers: int, p_dropout_dec: float,
                 n_speakers: int, gin_channels: int, n_split: int, n_sqz: int, sigmoid_scale: bool,
                 window_size: Optional[int], block_length: Optional[int], mean_only: bool,
                 hidden_channels_enc: Optional[int], hidden_channels_dec: Optional[int], prenet: bool) -> None:
        super().__init__()
        self.config = cfg = config_of_arguments(GlowTTSConfig, locals())
        self.n_sqz = cfg.n_sqz
        self.n_speakers = cfg.n_speakers
        gin = cfg.gin_channels if cfg.n_speakers > 1 else 0
        self.encoder = GlowTextEncoder(cfg.n_vocab, cfg.out_channels, cfg.encoder_channels, cfg.filter_channels,
                                       cfg.filter_channels_dp, cfg.kernel_size, cfg.n_heads, cfg.n_layers_enc,
                                       cfg.p_dropout, cfg.window_size, cfg.block_length, cfg.mean_only, cfg.prenet,
                                       gin)
        self.decoder = GlowDecoder(cfg.out_channels, cfg.decoder_channels, cfg.kernel_size_dec, cfg.dilation_rate,
                                   cfg.n_blocks_dec, cfg.n_block_layers, p_dropout=cfg.p_dropout_dec,
                                   n_split=cfg.n_split, n_sqz=cfg.n_sqz, sigmoid_scale=cfg.sigmoid_scale,
                                   gin_channels=gin)
        if cfg.n_speakers > 1:
            self.emb_g = nn.Embedding(cfg.n_speakers, cfg.gin_channels)
            nn.init.uniform_(self.emb_g.weight, -0.1, 0.1)

    # ------------------------------------------------------------------ helpers
    def speaker_embedding(self, sid: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """``sid (B,)`` -> unit-norm ``g (B, gin, 1)``; None for single-speaker models."""
        if self.n_speakers <= 1:
            return None
        if sid is None:
            raise ValueError(f"this model has {self.n_speakers} speakers: a speaker id (sid) is required")
        sid = torch.as_tensor(sid, device=self.emb_g.weight.device).long().reshape(-1)
        if int(sid.min()) < 0 or int(sid.max()) >= self.n_speakers:
            raise ValueError(f"speaker id out of range [0, {self.n_speakers}): {sid.tolist()}")
        return F.normalize(self.emb_g(sid)).unsqueeze(-1)

    def trim_frames(self, y: torch.Tensor, y_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Cut the frame axis and the lengths down to multiples of ``n_sqz`` (the squeeze needs whole groups)."""
        frames = (y.size(-1) // self.n_sqz) * self.n_sqz
        return y[:, :, :frames], (y_lengths // self.n_sqz) * self.n_sqz

    def set_ddi(self, ddi: bool) -> None:
        """Arm the data-dependent ActNorm init: the next training forward pass sets the ActNorm parameters."""
        self.decoder.set_ddi(ddi)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, x_lengths: torch.Tensor, y: torch.Tensor, y_lengths: torch.Tensor,
                sid: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training pass: flow the frames, align them to the text prior by MAS.

        Args:
            x: ``(B, Tx)`` symbol ids; ``x_lengths (B,)``.
            y: ``(B, D, Ty)`` latent frames; ``y_lengths (B,)`` (both trimmed to multiples of ``n_sqz``).
            sid: ``(B,)`` speaker ids (multi-speaker models).

        Returns a dict: ``z, z_m, z_logs (B, D, Ty')``, ``logdet (B,)``, ``z_mask (B, 1, Ty')``, ``x_m, x_logs
        (B, D, Tx)``, ``x_mask``, ``attn (B, 1, Ty', Tx)``, ``logw`` (predicted) and ``logw_`` (from MAS)
        ``(B, 1, Tx)``, ``y_lengths`` (trimmed).
        """
        g = self.speaker_embedding(sid)
        x_m, x_logs, logw, x_mask = self.encoder(x, x_lengths, g=g)
        y, y_lengths = self.trim_frames(y, y_lengths)
        z_mask = sequence_mask(y_lengths, y.size(2)).unsqueeze(1).to(x_mask.dtype)
        z, logdet = self.decoder(y, z_mask, g=g)
        attn = search_alignment(z, x_m, x_logs, x_mask, z_mask)
        logw_ = torch.log(1e-8 + attn.sum(2)) * x_mask
        return {
            "z": z, "z_m": expand_to_frames(attn, x_m), "z_logs": expand_to_frames(attn, x_logs), "logdet": logdet,
            "z_mask": z_mask, "x_m": x_m, "x_logs": x_logs, "x_mask": x_mask, "attn": attn, "logw": logw,
            "logw_": logw_, "y_lengths": y_lengths,
        }  # fmt: skip

    @staticmethod
    def losses(out: Dict[str, torch.Tensor], x_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mle_loss, duration_loss)`` of a :meth:`forward` result (Glow-TTS ``commons`` definitions)."""
        mle = glow_mle_loss(out["z"], out["z_m"], out["z_logs"], out["logdet"], out["z_mask"])
        return mle, log_duration_loss(out["logw"], out["logw_"], x_lengths)

    @torch.no_grad()
    def data_dependent_init(self, x: torch.Tensor, x_lengths: torch.Tensor, y: torch.Tensor, y_lengths: torch.Tensor,
                            sid: Optional[torch.Tensor] = None) -> None:
        """ActNorm DDI (Glow-TTS ``ddi``): one forward pass over a batch sets every ActNorm's scale and bias."""
        self.set_ddi(True)
        try:
            self.forward(x, x_lengths, y, y_lengths, sid=sid)
        finally:
            self.set_ddi(False)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def infer(self, x: torch.Tensor, x_lengths: torch.Tensor, sid: Optional[torch.Tensor] = None,
              noise_scale: float = 1.0, length_scale: float = 1.0, noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Text -> latent frames.

        ``w = ceil(exp(logw) * length_scale)`` frames per token, ``Ty = max(n_sqz, sum(w))`` trimmed to a multiple
        of ``n_sqz``; ``z = z_m + exp(z_logs) * noise * noise_scale`` (``noise (B, D, Ty)`` standard normal, drawn
        when None) goes through the reverse flow.

        Returns a dict: ``y (B, D, Ty)`` latent (zero after ``y_lengths``), ``y_lengths (B,)``, ``z_mask``,
        ``z_m``, ``z_logs``, ``attn (B, 1, Ty, Tx)``, ``logw``, ``w_ceil (B, 1, Tx)``.
        """
        g = self.speaker_embedding(sid)
        x_m, x_logs, logw, x_mask = self.encoder(x, x_lengths, g=g)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)
        y_lengths = torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()
        y_lengths = torch.clamp_min((y_lengths // self.n_sqz) * self.n_sqz, self.n_sqz)
        z_mask = sequence_mask(y_lengths, None).unsqueeze(1).to(x_mask.dtype)
        attn = generate_path(w_ceil, x_mask.unsqueeze(2) * z_mask.unsqueeze(-1))
        z_m, z_logs = expand_to_frames(attn, x_m), expand_to_frames(attn, x_logs)
        if noise is None:
            noise = torch.randn_like(z_m)
        elif noise.shape != z_m.shape:
            raise ValueError(f"infer: noise must be {tuple(z_m.shape)}, got {tuple(noise.shape)}")
        z = (z_m + torch.exp(z_logs) * noise * noise_scale) * z_mask
        y = self.decoder(z, z_mask, g=g, reverse=True)
        return {"y": y, "y_lengths": y_lengths, "z_mask": z_mask, "z_m": z_m, "z_logs": z_logs, "attn": attn,
                "logw": logw, "w_ceil": w_ceil}  # fmt: skip
