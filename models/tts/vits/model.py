"""VITS synthesizer (jaywalnut310/vits ``SynthesizerTrn``), checkpoint compatible.

Attribute names = official state-dict prefixes::

    enc_p   TextEncoder                  ids -> hidden, prior mean / log-std per token
    dec     HiFiGANGenerator             latent -> waveform (hop = prod(upsample_rates))
    enc_q   PosteriorEncoder             linear spectrogram -> posterior latent (training, voice conversion)
    flow    ResidualCouplingBlock        posterior latent <-> prior space (4 mean-only couplings)
    dp      StochasticDurationPredictor  (or DurationPredictor when ``use_sdp`` is False)
    emb_g   Embedding(n_speakers, gin)   only for multi-speaker models

Methods: :meth:`forward` (training pass with MAS), :meth:`infer` (text -> waveform), :meth:`voice_conversion`
(between speaker ids).  Every random draw can be replaced by a given tensor to replay a recorded run.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.tts.vits.config import VITSConfig
from modules.commons import generate_path, rand_slice_segments, sequence_mask
from modules.duration_predictor import DurationPredictor, StochasticDurationPredictor
from modules.flows import ResidualCouplingBlock
from modules.monotonic_align import search_alignment
from modules.posterior_encoder import PosteriorEncoder
from modules.transformer import RelPositionEncoder
from modules.vocoders.hifigan import HiFiGANGenerator
from modules.weight_norm import fold_weight_norm
from utils.memory import keep_freed_memory
from utils.registry import register

# Fixed by the official constructor.
_Q_KERNEL, _Q_DILATION, _Q_LAYERS = 5, 1, 16
_FLOW_KERNEL, _FLOW_DILATION, _FLOW_LAYERS, _FLOW_COUPLINGS = 5, 1, 4, 4
# frames on each side one output of the flow depends on (WaveNet layer i has dilation _FLOW_DILATION ** i)
FLOW_RECEPTIVE_FRAMES = _FLOW_COUPLINGS * sum(_FLOW_DILATION ** i * (_FLOW_KERNEL // 2) for i in range(_FLOW_LAYERS))
_SDP_FILTER, _DP_FILTER, _DP_KERNEL, _DP_DROPOUT, _SDP_FLOWS = 192, 256, 3, 0.5, 4


class TextEncoder(nn.Module):
    """Symbol ids ``(B, Tx)`` -> hidden ``(B, H, Tx)``, prior ``m, logs (B, C, Tx)``, mask ``(B, 1, Tx)``."""

    def __init__(
        self,
        n_vocab: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb = nn.Embedding(n_vocab, hidden_channels)
        nn.init.normal_(self.emb.weight, 0.0, hidden_channels**-0.5)
        self.encoder = RelPositionEncoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, x: torch.Tensor, x_lengths: torch.Tensor):
        if x.dim() != 2:
            raise ValueError(f"TextEncoder: expected ids (B, T), got shape {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.emb.num_embeddings):
            raise ValueError(f"TextEncoder: symbol ids must lie in [0, {self.emb.num_embeddings}), got "
                             f"[{int(x.min())}, {int(x.max())}]")
        h = self.emb(x) * math.sqrt(self.hidden_channels)  # (B, Tx, H)
        h = h.transpose(1, -1)
        x_mask = sequence_mask(x_lengths, h.size(2)).unsqueeze(1).to(h.dtype)
        h = self.encoder(h * x_mask, x_mask)
        stats = self.proj(h) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return h, m, logs, x_mask


@register("model", "vits")
class VITS(BuiltFromConfig, nn.Module):
    """VITS; built by :func:`models.base.building.build_model` / :meth:`from_config` from a :class:`VITSConfig`
    (the official ``model`` block names; meaning and defaults are there)."""

    config_class = VITSConfig

    def __init__(self, *, n_vocab: int, spec_channels: int, segment_frames: int, inter_channels: int,
                 hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
                 p_dropout: float, resblock: str, resblock_kernel_sizes: List[int],
                 resblock_dilation_sizes: List[List[int]], upsample_rates: List[int], upsample_initial_channel: int,
                 upsample_kernel_sizes: List[int], n_speakers: int, gin_channels: int, use_sdp: bool,
                 use_spectral_norm: bool) -> None:
        super().__init__()
        self.config = cfg = config_of_arguments(VITSConfig, locals())
        self.hop_length = cfg.hop_length
        self.segment_frames = cfg.segment_frames
        self.n_speakers = cfg.n_speakers
        self.use_sdp = cfg.use_sdp
        gin = cfg.gin_channels if cfg.n_speakers > 1 else 0
        self.enc_p = TextEncoder(cfg.n_vocab, cfg.inter_channels, cfg.hidden_channels, cfg.filter_channels,
                                 cfg.n_heads, cfg.n_layers, cfg.kernel_size, cfg.p_dropout)
        self.dec = HiFiGANGenerator(cfg.inter_channels, cfg.resblock, cfg.resblock_kernel_sizes,
                                    cfg.resblock_dilation_sizes, cfg.upsample_rates, cfg.upsample_initial_channel,
                                    cfg.upsample_kernel_sizes, gin_channels=gin)
        self.enc_q = PosteriorEncoder(cfg.spec_channels, cfg.inter_channels, cfg.hidden_channels, _Q_KERNEL,
                                      _Q_DILATION, _Q_LAYERS, gin_channels=gin)
        self.flow = ResidualCouplingBlock(cfg.inter_channels, cfg.hidden_channels, _FLOW_KERNEL, _FLOW_DILATION,
                                          _FLOW_LAYERS, n_flows=_FLOW_COUPLINGS, gin_channels=gin)
        if cfg.use_sdp:
            self.dp = StochasticDurationPredictor(cfg.hidden_channels, _SDP_FILTER, _DP_KERNEL, _DP_DROPOUT,
                                                  _SDP_FLOWS, gin_channels=gin)
        else:
            self.dp = DurationPredictor(cfg.hidden_channels, _DP_FILTER, _DP_KERNEL, _DP_DROPOUT, gin_channels=gin)
        if cfg.n_speakers > 1:
            self.emb_g = nn.Embedding(cfg.n_speakers, cfg.gin_channels)

    def prepare_for_inference(self) -> "VITS":
        """Eval mode with weight norm folded into plain weights (same numbers, faster)."""
        self.eval()
        fold_weight_norm(self)
        keep_freed_memory()
        return self

    # ------------------------------------------------------------------ helpers
    def speaker_embedding(self, sid: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """``sid (B,)`` -> ``g (B, gin, 1)``; None for single-speaker models."""
        if self.n_speakers <= 1:
            return None
        if sid is None:
            raise ValueError(f"this VITS model has {self.n_speakers} speakers: a speaker id (sid) is required")
        sid = torch.as_tensor(sid, device=self.emb_g.weight.device).long().reshape(-1)
        if int(sid.min()) < 0 or int(sid.max()) >= self.n_speakers:
            raise ValueError(f"speaker id out of range [0, {self.n_speakers}): {sid.tolist()}")
        return self.emb_g(sid).unsqueeze(-1)

    @staticmethod
    def expand_prior(attn: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """Token-level ``(B, C, Tx)`` -> frame level ``(B, C, Ty)`` through the alignment ``(B, 1, Ty, Tx)``."""
        return torch.matmul(attn.squeeze(1), stats.transpose(1, 2)).transpose(1, 2)

    # ------------------------------------------------------------------ training
    def forward(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        sid: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Training pass.

        Args:
            x: ``(B, Tx)`` symbol ids; ``x_lengths (B,)``.
            y: ``(B, spec_channels, Ty)`` linear spectrogram; ``y_lengths (B,)``.
            sid: ``(B,)`` speaker ids (multi-speaker models).

        Returns a dict: ``wav`` ``(B, 1, segment_frames * hop)`` decoded from a random latent window starting at
        frame ``ids_slice (B,)``; ``l_length (B,)`` duration loss; ``attn (B, 1, Ty, Tx)``; masks ``x_mask``,
        ``y_mask``; ``z, z_p, m_q, logs_q`` and the expanded prior ``m_p, logs_p`` ``(B, C, Ty)``.
        """
        h, m_p, logs_p, x_mask = self.enc_p(x, x_lengths)
        g = self.speaker_embedding(sid)
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=g)
        z_p = self.flow(z, y_mask, g=g)

        attn = search_alignment(z_p, m_p, logs_p, x_mask, y_mask)
        w = attn.sum(2)  # (B, 1, Tx) frames per token
        if self.use_sdp:
            l_length = self.dp(h, x_mask, w, g=g) / torch.sum(x_mask)
        else:
            logw_target = torch.log(w + 1e-6) * x_mask
            logw = self.dp(h, x_mask, g=g)
            l_length = torch.sum((logw - logw_target) ** 2, [1, 2]) / torch.sum(x_mask)

        m_p = self.expand_prior(attn, m_p)
        logs_p = self.expand_prior(attn, logs_p)
        z_slice, ids_slice = rand_slice_segments(z, y_lengths, self.segment_frames)
        wav = self.dec(z_slice, g=g)
        return {
            "wav": wav, "l_length": l_length, "attn": attn, "ids_slice": ids_slice, "x_mask": x_mask,
            "y_mask": y_mask, "z": z, "z_p": z_p, "m_p": m_p, "logs_p": logs_p, "m_q": m_q, "logs_q": logs_q,
        }  # fmt: skip

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def infer(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        sid: Optional[torch.Tensor] = None,
        noise_scale: float = 1.0,
        length_scale: float = 1.0,
        noise_scale_w: float = 1.0,
        max_len: Optional[int] = None,
        noise: Optional[torch.Tensor] = None,
        duration_noise: Optional[torch.Tensor] = None,
        decode_per_item: bool = False,
        decode: bool = True,
        flow: bool = True,
        generator: Optional[torch.Generator] = None,
    ) -> Dict[str, torch.Tensor]:
        """Text -> waveform.

        Args:
            x, x_lengths: ``(B, Tx)`` symbol ids and ``(B,)`` lengths.
            sid: ``(B,)`` speaker ids (multi-speaker models).
            noise_scale: prior sampling temperature; length_scale: > 1 slows down; noise_scale_w: SDP temperature.
            max_len: decode at most this many latent frames.
            noise: ``(B, C, Ty)`` standard normal for the prior sample; duration_noise: ``(B, 2, Tx)`` for the SDP.
            decode_per_item: run the (unmasked) decoder on each item's own frames, so that a waveform does not
                depend on the other items of the batch; False decodes the padded batch as the original does.
            decode: False stops at the latent (``wav`` is None; a streaming caller decodes ``z`` in windows).
            flow: False stops at the prior sample ``z_p`` (``z`` and ``wav`` are None; a streaming caller runs the
                flow and the decoder window by window).
            generator: draw the noises not given from this generator instead of torch's global one (the same
                numbers from the same state: the duration noise first, then the prior's), so that calls in several
                threads cannot draw each other's noise.

        Returns a dict: ``wav (B, 1, Ty * hop)``, ``lengths (B,)`` valid samples, ``attn (B, 1, Ty, Tx)``,
        ``y_mask``, ``z`` (flow output = decoder input before masking), ``z_p``, ``m_p``, ``logs_p``
        ``(B, C, Ty)``, ``logw``, ``w_ceil (B, 1, Tx)`` and the text encoder outputs ``text_hidden``,
        ``m_p_text``, ``logs_p_text``.
        """
        h, m_p_text, logs_p_text, x_mask = self.enc_p(x, x_lengths)
        g = self.speaker_embedding(sid)
        logw = self.log_durations(h, x_mask, g, noise_scale_w, duration_noise, generator)  # draws first
        w_ceil, y_lengths, y_mask, attn = self.duration_path(logw, x_mask, length_scale)
        m_p = self.expand_prior(attn, m_p_text)
        logs_p = self.expand_prior(attn, logs_p_text)
        z_p = m_p + self.prior_noise(m_p, noise, generator) * torch.exp(logs_p) * noise_scale
        z = self.flow(z_p, y_mask, g=g, reverse=True) if flow else None
        frames = y_lengths if max_len is None else torch.clamp_max(y_lengths, max_len)
        decode = decode and flow
        wav = self.decode((z * y_mask)[:, :, :max_len], g, frames if decode_per_item else None) if decode else None
        lengths = frames * self.hop_length
        return {
            "wav": wav, "lengths": lengths, "attn": attn, "y_mask": y_mask, "z": z, "z_p": z_p, "m_p": m_p,
            "logs_p": logs_p, "logw": logw, "w_ceil": w_ceil, "text_hidden": h, "m_p_text": m_p_text,
            "logs_p_text": logs_p_text,
        }  # fmt: skip

    def log_durations(self, h: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor], noise_scale_w: float,
                      duration_noise: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Predicted log durations ``(B, 1, Tx)`` of the text encoding ``h (B, H, Tx)``; the stochastic
        predictor samples with ``duration_noise (B, 2, Tx)``, drawn from ``generator`` when given and missing
        (else the predictor draws from torch's global generator)."""
        if not self.use_sdp:
            return self.dp(h, x_mask, g=g)
        if duration_noise is None and generator is not None:
            duration_noise = torch.randn((h.size(0), 2, h.size(2)), generator=generator, dtype=h.dtype,
                                         device=generator.device).to(h.device)
        return self.dp(h, x_mask, g=g, reverse=True, noise_scale=noise_scale_w, noise=duration_noise)

    @staticmethod
    def duration_path(logw: torch.Tensor, x_mask: torch.Tensor,
                      length_scale: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log durations ``(B, 1, Tx)`` -> ``w_ceil (B, 1, Tx)`` whole frames per token, ``y_lengths (B,)`` (at
        least 1), ``y_mask (B, 1, Ty)`` and the monotonic path ``attn (B, 1, Ty, Tx)``."""
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)
        y_lengths = torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()
        y_mask = sequence_mask(y_lengths, None).unsqueeze(1).to(x_mask.dtype)
        attn = generate_path(w_ceil, x_mask.unsqueeze(2) * y_mask.unsqueeze(-1))
        return w_ceil, y_lengths, y_mask, attn

    @staticmethod
    def prior_noise(m_p: torch.Tensor, noise: Optional[torch.Tensor] = None,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Standard normal noise shaped like the prior mean ``m_p (B, C, Ty)``: ``noise`` (checked), else drawn
        from ``generator``, else from torch's global generator."""
        if noise is None and generator is not None:  # randn_like's draw: the same strides, so the same numbers
            return torch.empty_like(m_p, device=generator.device).normal_(generator=generator).to(m_p.device)
        if noise is None:
            return torch.randn_like(m_p)
        if noise.shape != m_p.shape:
            raise ValueError(f"infer: noise must be {tuple(m_p.shape)}, got {tuple(noise.shape)}")
        return noise

    def decode(self, z: torch.Tensor, g: Optional[torch.Tensor], frames: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Latent ``(B, C, T)`` -> waveform ``(B, 1, T * hop)``; with ``frames (B,)`` each item is decoded alone
        on its first ``frames[b]`` frames and zero-padded (no leakage from padding through the decoder)."""
        if frames is None or z.size(0) == 1:
            return self.dec(z, g=g)
        wav = z.new_zeros(z.size(0), 1, z.size(2) * self.hop_length)
        for b in range(z.size(0)):
            n = int(frames[b])
            wav[b:b + 1, :, : n * self.hop_length] = self.dec(z[b:b + 1, :, :n], g=None if g is None else g[b:b + 1])
        return wav

    @torch.no_grad()
    def voice_conversion(
        self,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        sid_src: torch.Tensor,
        sid_tgt: torch.Tensor,
        noise_scale: float = 1.0,
        noise: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Convert a linear spectrogram ``y (B, spec_channels, T)`` from speaker ``sid_src`` to ``sid_tgt``.

        The posterior sample (``noise`` replaces its standard normal draw) is mapped to the speaker-independent
        prior space with the source speaker and back with the target speaker, then decoded.
        Returns ``wav (B, 1, T * hop)``, ``y_mask``, ``z``, ``z_p``, ``z_hat``, ``m_q``, ``logs_q``.
        """
        if self.n_speakers <= 1:
            raise ValueError("voice_conversion needs a multi-speaker VITS model (n_speakers > 1)")
        g_src = self.speaker_embedding(sid_src)
        g_tgt = self.speaker_embedding(sid_tgt)
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=g_src, noise_scale=noise_scale, noise=noise)
        z_p = self.flow(z, y_mask, g=g_src)
        z_hat = self.flow(z_p, y_mask, g=g_tgt, reverse=True)
        wav = self.dec(z_hat * y_mask, g=g_tgt)
        return {"wav": wav, "y_mask": y_mask, "z": z, "z_p": z_p, "z_hat": z_hat, "m_q": m_q, "logs_q": logs_q}
