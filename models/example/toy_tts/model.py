"""Toy TTS: the smallest complete text-to-mel model, FastSpeech-2-like (no pitch or energy predictors).

phoneme ids ``(B, N)`` -> embedding -> Transformer encoder -> duration predictor (log frames, trained on the
manifest's ``extra.durations``, or with ``aligner`` on durations found by monotonic alignment search on the
log-mel, Glow-TTS style) -> length regulator (each phoneme's vector repeated for its frames) -> sine
positions -> Transformer decoder -> log-mel ``(B, n_mels, T)``. Audio: Griffin-Lim (:mod:`processors.griffin_lim`).

Every block comes from ``modules/``; this file is the model's own logic.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.example.toy_tts.config import ToyTTSConfig
from modules.commons import generate_path, sequence_mask
from modules.duration_predictor import DurationPredictor
from modules.monotonic_align import align_to_mel
from modules.positional import sine_table
from modules.transformer import RelPositionEncoder
from utils.registry import register


@register("model", "toy_tts")
class ToyTTS(BuiltFromConfig, nn.Module):
    """Built from a :class:`ToyTTSConfig` by :func:`models.base.building.build_model` / :meth:`from_config`."""

    config_class = ToyTTSConfig

    def __init__(self, *, n_symbols: int, n_mels: int, hidden: int, ffn: int, heads: int, encoder_layers: int,
                 decoder_layers: int, kernel_size: int, duration_filter: int, dropout: float, aligner: bool) -> None:
        super().__init__()
        self.config = config_of_arguments(ToyTTSConfig, locals())
        self.hidden = hidden
        self.embedding = nn.Embedding(n_symbols, hidden)
        nn.init.normal_(self.embedding.weight, 0.0, hidden ** -0.5)
        self.encoder = RelPositionEncoder(hidden, ffn, heads, encoder_layers, kernel_size, dropout)
        self.duration_predictor = DurationPredictor(hidden, duration_filter, 3, dropout)
        self.decoder = RelPositionEncoder(hidden, ffn, heads, decoder_layers, kernel_size, dropout)
        self.mel = nn.Conv1d(hidden, n_mels, 1)
        nn.init.constant_(self.mel.bias, -6.0)  # start near speech's mean log-mel: early steps learn shape, not offset
        self.prior = nn.Conv1d(hidden, n_mels, 1) if aligner else None  # per-phoneme mel mean the aligner scores

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor):
        """``ids (B, N)`` -> phoneme states ``(B, H, N)``, mask ``(B, 1, N)``, log(1 + frames) ``(B, N)``."""
        mask = sequence_mask(lengths, ids.size(1)).unsqueeze(1).float()
        states = self.encoder(self.embedding(ids).transpose(1, 2) * math.sqrt(self.hidden), mask)
        return states, mask, self.duration_predictor(states, mask).squeeze(1)

    def decode(self, states: torch.Tensor, mask: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Length regulator + decoder: integer ``frames (B, N)`` per phoneme -> log-mel ``(B, n_mels, T)``."""
        lengths = frames.sum(1).long().clamp(min=1)
        frame_mask = sequence_mask(lengths).unsqueeze(1).float()
        path = generate_path(frames.unsqueeze(1), frame_mask.unsqueeze(-1) * mask.unsqueeze(2)).squeeze(1)
        x = torch.bmm(states, path.transpose(1, 2))  # (B, H, N) x (B, N, T): each phoneme repeated
        x = x + sine_table(x.size(2), self.hidden).to(x).t().unsqueeze(0)  # where in the utterance a frame is
        return self.mel(self.decoder(x * frame_mask, frame_mask)) * frame_mask

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, frames: Optional[torch.Tensor] = None,
                mel: Optional[torch.Tensor] = None, mel_lengths: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Teacher-forced on ``frames (B, N)`` (given durations) or, when None, on the aligner's durations for
        ``mel (B, n_mels, T)`` -> ``{"mel", "log_durations", "frames", "mask"}`` (+ ``"prior_loss"``)."""
        states, mask, log_durations = self.encode(ids, lengths)
        out = {"log_durations": log_durations, "mask": mask.squeeze(1)}
        if frames is None:
            if self.prior is None or mel is None or mel_lengths is None:
                raise ValueError("no durations given: the model needs model.aligner and the target mel")
            frame_mask = sequence_mask(mel_lengths, mel.size(2)).unsqueeze(1).float()
            path, out["prior_loss"] = align_to_mel(mel, self.prior(states), mask, frame_mask)
            frames = path.sum(1)
        return {**out, "mel": self.decode(states, mask, frames), "frames": frames}

    @torch.no_grad()
    def infer(self, ids: torch.Tensor, lengths: Optional[torch.Tensor] = None,
              length_scale: float = 1.0) -> torch.Tensor:
        """``ids (B, N)`` -> log-mel ``(B, n_mels, T)`` with predicted durations (``length_scale`` > 1 speaks
        slower)."""
        lengths = torch.full((ids.size(0),), ids.size(1), device=ids.device) if lengths is None else lengths
        states, mask, log_durations = self.encode(ids, lengths)
        frames = torch.round(torch.expm1(log_durations).clamp(min=0) * length_scale) * mask.squeeze(1)
        return self.decode(states, mask, frames)
