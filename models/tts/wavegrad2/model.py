"""WaveGrad 2 (Chen et al. 2021): phonemes -> waveform by iterative refinement.

text ``(B, N)`` -> Tacotron-2 encoder ``(B, N, H)`` (+ speaker embedding, concatenated) -> duration predictor and
range (sigma) predictor -> Gaussian upsampling to frames ``(B, H', T)`` -> (training) a random window of
``window_frames`` frames inside the valid frames -> WaveGrad decoder predicting the noise of the noised waveform
window at a continuous noise level. Inference refines ``y_T ~ N(0, I)`` over the whole sequence with any schedule.

Submodule names follow maum-ai/wavegrad2 so that its checkpoints load (``models/tts/wavegrad2/checkpoint.py``).
"""

from __future__ import annotations

from typing import Dict, List, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.tts.wavegrad2.config import WaveGrad2Config
from modules.diffusion import NoiseSchedule, add_noise, named_schedule, refine
from modules.gaussian_upsampling import gaussian_upsample
from modules.monotonic_align import align_to_mel
from modules.wavegrad import WaveGradDecoder
from modules.zoneout_lstm import ZoneoutLSTM
from utils.registry import register


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` bool, True where ``index < lengths[b]``."""
    return torch.arange(size, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class Tacotron2Encoder(nn.Module):
    """Embedding -> ``depth`` x [conv k, BatchNorm, ReLU, dropout] -> BiLSTM (optional zoneout): ``(B, N, C)``.

    ``mask_padding`` zeroes padded positions before every convolution so that a batched item equals the item
    alone (maum-ai does not, and its padding embeddings leak into the last valid positions: off for parity).
    """

    def __init__(self, n_symbols: int, channels: int, kernel_size: int, depth: int, dropout: float,
                 zoneout: float = 0.0, mask_padding: bool = True):
        super().__init__()
        self.mask_padding = mask_padding
        self.embedding = nn.Embedding(n_symbols, channels)
        self.cnn = nn.Sequential(*[
            nn.Sequential(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2),
                          nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout(dropout))
            for _ in range(depth)
        ])  # fmt: skip
        self.lstm = ZoneoutLSTM(channels, channels // 2, 1, bidirectional=True, zoneout=zoneout)

    def forward(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``text (B, N)`` long, ``lengths (B,)`` -> ``(B, N, C)`` (zeros on padding)."""
        mask = length_mask(lengths, text.size(1)).unsqueeze(1)
        x = self.embedding(text).transpose(1, 2)
        for block in self.cnn:
            x = block(x * mask if self.mask_padding else x)
        return self.lstm(x.transpose(1, 2), lengths)


class LSTMPredictor(nn.Module):
    """2-layer BiLSTM + bias-free linear -> one value per token ``(B, N)``; softplus when ``positive``."""

    def __init__(self, in_channels: int, channels: int, positive: bool):
        super().__init__()
        self.lstm = ZoneoutLSTM(in_channels, channels, 2, bidirectional=True)
        head = [nn.Linear(2 * channels, 1, bias=False)] + ([nn.Softplus()] if positive else [])
        self.fc = nn.Sequential(*head)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x, lengths)).squeeze(-1)


class Resampling(nn.Module):
    """Duration and range predictors (Non-Attentive Tacotron); the upsampling itself is a function."""

    def __init__(self, in_channels: int, duration_channels: int, range_channels: int):
        super().__init__()
        self.duration_predictor = LSTMPredictor(in_channels, duration_channels, positive=False)
        self.range_parameter_predictor = LSTMPredictor(in_channels + 1, range_channels, positive=True)


class MelAligner(nn.Module):
    """Internal aligner (Glow-TTS style): a unit-variance Gaussian over log-mel frames per token, mean
    ``proj(token)``; monotonic alignment search picks the most likely path, its frame counts are the durations.

    The loss (negative log-likelihood of the frames along the path, up to a constant) trains the projection
    and, through it, the encoder; the durations carry no gradient.
    """

    def __init__(self, in_channels: int, mel_channels: int):
        super().__init__()
        self.proj = nn.Linear(in_channels, mel_channels)

    def forward(self, tokens: torch.Tensor, token_mask: torch.Tensor, mel: torch.Tensor,
                mel_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens ``(B, N, H)``, mel ``(B, M, T)`` -> durations ``(B, N)`` (sum = mel_lengths), loss (scalar)."""
        if bool((mel_lengths < token_mask.sum(-1)).any()):
            raise ValueError("aligner: an item has fewer frames than tokens")
        mu = self.proj(tokens).transpose(1, 2)  # (B, M, N)
        x_mask = token_mask.unsqueeze(1).to(mel.dtype)
        y_mask = length_mask(mel_lengths, mel.size(-1)).unsqueeze(1).to(mel.dtype)
        path, loss = align_to_mel(mel, mu, x_mask, y_mask)  # (B, T, N)
        return path.sum(1), loss


@register("model", "wavegrad2")
class WaveGrad2(BuiltFromConfig, nn.Module):
    """Text -> waveform; built by :func:`models.base.building.build_model` / :meth:`from_config` from a
    :class:`WaveGrad2Config` (meaning and defaults are there). ``forward``/``infer`` read only the attributes
    set here, never the config."""

    config_class = WaveGrad2Config

    def __init__(self, *, n_symbols: int, encoder_channels: int, encoder_kernel: int, encoder_depth: int,
                 encoder_dropout: float, encoder_zoneout: float, encoder_mask_padding: bool, n_speakers: int,
                 speaker_channels: int, duration_lstm_channels: int, range_lstm_channels: int,
                 duration_unit: Literal["log_frames", "seconds"], frame_offset: float, mask_padded_frames: bool,
                 sample_rate: int, aligner_mel_channels: int, window_frames: int, factors: List[int],
                 up_preconv_channels: int, up_channels: List[int], up_dilations: List[List[int]],
                 down_preconv_channels: int, down_channels: List[int], down_dilations: List[List[int]],
                 blocks_per_stage: int, pos_emb_scale: float, train_schedule: str,
                 train_betas: Optional[List[float]]) -> None:
        super().__init__()
        self.config = cfg = config_of_arguments(WaveGrad2Config, locals())
        self.hop_length = cfg.hop_length
        self.sample_rate = sample_rate
        self.n_speakers = n_speakers
        self.aligner_mel_channels = aligner_mel_channels
        self.duration_unit = duration_unit
        self.frame_offset = frame_offset
        self.mask_padded_frames = mask_padded_frames
        self.window_frames = window_frames
        self.encoder = Tacotron2Encoder(cfg.n_symbols, cfg.encoder_channels, cfg.encoder_kernel, cfg.encoder_depth,
                                        cfg.encoder_dropout, cfg.encoder_zoneout, cfg.encoder_mask_padding)
        self.speaker_embedding = nn.Embedding(cfg.n_speakers, cfg.speaker_channels) if cfg.n_speakers > 0 else None
        cond = cfg.cond_channels
        self.resampling = Resampling(cond, cfg.duration_lstm_channels, cfg.range_lstm_channels)
        self.aligner = MelAligner(cond, cfg.aligner_mel_channels) if cfg.aligner_mel_channels > 0 else None
        self.decoder = WaveGradDecoder(
            cond, cfg.factors, cfg.up_preconv_channels, cfg.up_channels, cfg.up_dilations, cfg.down_preconv_channels,
            cfg.down_channels, cfg.down_dilations, cfg.pos_emb_scale, cfg.blocks_per_stage)  # fmt: skip
        betas = cfg.train_betas if cfg.train_betas is not None else named_schedule(cfg.train_schedule)
        self.train_schedule = NoiseSchedule.from_betas(betas)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    # ------------------------------------------------------------------ text side
    def encode(self, text: torch.Tensor, text_lengths: torch.Tensor, speakers: Optional[torch.Tensor] = None):
        """-> tokens ``(B, N, H')`` (encoder output, speaker embedding concatenated) and token mask ``(B, N)``."""
        tokens = self.encoder(text, text_lengths)
        if self.speaker_embedding is not None:
            if speakers is None:
                raise ValueError(f"this model has {self.n_speakers} speakers: pass speaker ids")
            spk = self.speaker_embedding(speakers).unsqueeze(1).expand(-1, tokens.size(1), -1)
            tokens = torch.cat([tokens, spk], dim=-1)
        return tokens, length_mask(text_lengths, text.size(1))

    def duration_target(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames per token -> the predictor's target domain (seconds or log(1 + frames))."""
        if self.duration_unit == "seconds":
            return frames / self.frame_rate
        return torch.log1p(frames)

    def predicted_frames(self, prediction: torch.Tensor, length_scale: float = 1.0) -> torch.Tensor:
        """Predictor output -> whole frames per token (>= 0), scaled by ``length_scale`` (> 1 slower)."""
        if self.duration_unit == "seconds":
            frames = prediction * length_scale * self.frame_rate
        else:
            frames = torch.expm1(prediction).clamp(min=0) * length_scale
        return torch.round(frames).clamp(min=0)

    def upsample(self, tokens: torch.Tensor, token_mask: torch.Tensor, durations: torch.Tensor,
                 text_lengths: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Range prediction + Gaussian upsampling with ``durations (B, N)`` frames.

        Returns ``hidden (B, H', T)`` (zero past each item's frames), ``weights (B, N, T)``, ``sigma (B, N)``
        (1e-8 on padding), ``frame_lengths (B,)``.
        """
        durations = durations * token_mask
        sigma_in = torch.cat([tokens, durations.unsqueeze(-1).to(tokens.dtype)], dim=-1)
        sigma = self.resampling.range_parameter_predictor(sigma_in, text_lengths).masked_fill(~token_mask, 1e-8)
        frame_lengths = durations.sum(-1).round().long()
        num_frames = max(int(frame_lengths.max()), 1)
        hidden, weights = gaussian_upsample(tokens, durations, sigma, num_frames, token_mask,
                                            frame_lengths if self.mask_padded_frames else None,
                                            self.frame_offset)
        return {"hidden": hidden.transpose(1, 2), "weights": weights, "sigma": sigma, "frame_lengths": frame_lengths}

    # ------------------------------------------------------------------ training
    def window_starts(self, frame_lengths: torch.Tensor, uniform: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Window starts inside valid frames: ``floor(u * (len - W + 1))``, 0 for items shorter than W."""
        if uniform is None:
            uniform = torch.rand(frame_lengths.shape, generator=generator)
        span = (frame_lengths - self.window_frames + 1).clamp(min=1)
        return (uniform.to(frame_lengths.device) * span).long().clamp(max=span - 1)

    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        durations: Optional[torch.Tensor],
        wav: torch.Tensor,
        noise_level: torch.Tensor,
        speakers: Optional[torch.Tensor] = None,
        eps: Optional[torch.Tensor] = None,
        window_starts: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        mel: Optional[torch.Tensor] = None,
        mel_lengths: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Training forward on one window per item.

        Args:
            text ``(B, N)``, text_lengths ``(B,)``, durations ``(B, N)`` frames (0 on padding), wav ``(B, L)``
            (zero-padded; cropped/padded to ``sum(durations) * hop``), noise_level ``(B, 1)`` continuous
            sqrt(alpha_bar); eps ``(B, W*hop)`` and window_starts ``(B,)`` replace the random draws
            (``generator``) when given. ``durations=None``: the internal aligner finds them on ``mel (B, M, T)``
            with ``mel_lengths (B,)`` (output adds ``durations`` and ``aligner_loss``).

        Returns dict: ``eps_pred``, ``eps``, ``wav_window``, ``noisy_window``, ``hidden_window (B, H', W)``,
        ``sample_mask (B, W*hop)``, ``duration_pred (B, N)``, ``token_mask``, ``hidden``, ``weights``, ``sigma``,
        ``frame_lengths``, ``window_starts``.
        """
        tokens, token_mask = self.encode(text, text_lengths, speakers)
        extra: Dict[str, torch.Tensor] = {}
        if durations is None:
            if self.aligner is None or mel is None or mel_lengths is None:
                raise ValueError("no durations given: the model needs its aligner (model.aligner_mel_channels) "
                                 "and mel/mel_lengths")
            durations, extra["aligner_loss"] = self.aligner(tokens, token_mask, mel, mel_lengths)
        extra["durations"] = durations
        duration_pred = self.resampling.duration_predictor(tokens, text_lengths).masked_fill(~token_mask, 0.0)
        up = self.upsample(tokens, token_mask, durations, text_lengths)
        hop, size = self.hop_length, self.window_frames
        if window_starts is None:
            window_starts = self.window_starts(up["frame_lengths"], generator=generator)
        hidden = F.pad(up["hidden"], (0, max(0, size - up["hidden"].size(-1))))
        frames_needed = int((window_starts + size).max())
        hidden = F.pad(hidden, (0, max(0, frames_needed - hidden.size(-1))))
        wav = F.pad(wav, (0, max(0, frames_needed * hop - wav.size(-1))))
        wav = wav * length_mask(up["frame_lengths"] * hop, wav.size(-1)).to(wav.dtype)
        hidden_window = torch.stack([hidden[b, :, int(s):int(s) + size] for b, s in enumerate(window_starts)])
        wav_window = torch.stack([wav[b, int(s) * hop:(int(s) + size) * hop] for b, s in enumerate(window_starts)])
        valid_samples = ((up["frame_lengths"] - window_starts).clamp(min=0, max=size) * hop)
        if not self.mask_padded_frames:  # maum-ai: a short item's padded window counts fully in the loss
            valid_samples = torch.full_like(valid_samples, size * hop)
        if eps is None:
            eps = torch.randn(wav_window.shape, generator=generator).to(wav_window)
        noisy = add_noise(wav_window, noise_level, eps)
        eps_pred = self.decoder(noisy, hidden_window, noise_level)
        return {
            "eps_pred": eps_pred, "eps": eps, "wav_window": wav_window, "noisy_window": noisy,
            "hidden_window": hidden_window, "sample_mask": length_mask(valid_samples, size * hop),
            "duration_pred": duration_pred, "token_mask": token_mask, "window_starts": window_starts, **up, **extra,
        }  # fmt: skip

    def losses(self, out: Dict[str, torch.Tensor], durations: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """L1 on the noise over valid window samples, MSE of the duration predictor over valid tokens (target:
        ``durations`` or the ones the forward used) and the aligner's loss when it ran."""
        durations = out["durations"] if durations is None else durations
        mask = out["sample_mask"].to(out["eps"].dtype)
        l1 = ((out["eps_pred"] - out["eps"]).abs() * mask).sum() / mask.sum().clamp(min=1)
        tokens = out["token_mask"]
        target = self.duration_target(durations.to(out["duration_pred"].dtype))
        dur = F.mse_loss(out["duration_pred"][tokens], target[tokens])
        losses = {"l1": l1, "duration": dur}
        if "aligner_loss" in out:
            losses["aligner"] = out["aligner_loss"]
        return losses

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def hidden_from_text(self, text: torch.Tensor, text_lengths: torch.Tensor, speakers: Optional[torch.Tensor] = None,
                         length_scale: float = 1.0,
                         durations: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Predicted (or given) durations -> frame-rate conditioning ``hidden (B, H', T)`` + ``durations``."""
        tokens, token_mask = self.encode(text, text_lengths, speakers)
        if durations is None:
            pred = self.resampling.duration_predictor(tokens, text_lengths)
            durations = self.predicted_frames(pred, length_scale) * token_mask
            empty = durations.sum(-1) == 0  # nothing to say at all: give the loudest token one frame
            if bool(empty.any()):
                first = pred.masked_fill(~token_mask, float("-inf")).argmax(-1)
                durations[empty, first[empty]] = 1.0
        up = self.upsample(tokens, token_mask, durations, text_lengths)
        return {**up, "durations": durations}

    @torch.no_grad()
    def infer(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        schedule: NoiseSchedule,
        speakers: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        clip_denoised: bool = True,
        length_scale: float = 1.0,
        durations: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Text -> ``wav (B, L)`` (zero past ``lengths`` samples) by refinement over ``schedule``.

        Items are refined one at a time (a padded tail would otherwise feed the decoder's convolutions), each
        from ``y_T`` and step noise drawn with ``generator`` in item order.
        """
        h = self.hidden_from_text(text, text_lengths, speakers, length_scale, durations)
        lengths = h["frame_lengths"] * self.hop_length
        wav = h["hidden"].new_zeros(text.size(0), int(lengths.max()))
        for b in range(text.size(0)):
            cond = h["hidden"][b:b + 1, :, : int(h["frame_lengths"][b])]
            y_T = torch.randn((1, int(lengths[b])), generator=generator).to(cond)
            y0 = refine(lambda y, level: self.decoder(y, cond, level), schedule, y_T, generator=generator,
                        clip_denoised=clip_denoised)
            # the last float16 step below 1 keeps 16-bit writers from wrapping around (maum-ai)
            wav[b, : int(lengths[b])] = y0[0].clamp(-1.0, 1.0 - torch.finfo(torch.float16).eps)
        return {"wav": wav, "lengths": lengths, "durations": h["durations"], "sigma": h["sigma"]}
