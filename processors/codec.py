"""Neural audio codec as a frozen component: EnCodec 24 kHz through ``transformers.EncodecModel``.

VALL-E's codes are EnCodec 24 kHz at 6 kbps: 8 residual codebooks of 1024 entries at 75 frames/s (hop 320).
``facebook/encodec_24khz`` on the Hugging Face hub is the converted ``encodec_24khz`` checkpoint that the
lifeiteng/Amphion models were trained with (identical codes, checked in the VALL-E blueprint §6).

* :class:`EncodecCodec` — ``encode(wav, sample_rate) -> (frames, Q)`` int64 (any input rate is resampled to
  24 kHz mono), ``decode(codes) -> waveform``; parameters frozen, eval mode.
* ``EncodecCodec.load("facebook/encodec_24khz")`` reads the local HF cache or the hub; when neither has it the
  error says so in one line. ``EncodecCodec.load("tiny-random")`` builds a tiny random codec (168 k parameters,
  same hop, frame rate and codebook layout) for tests and CPU smoke runs, announced with a warning: its codes
  carry no speech.
* :class:`EncodecCodes` — registered feature ``encodec_codes`` (a :class:`~processors.features.base.CodeExtractor`):
  ``<features_dir>/encodec_codes/<id>.pt`` int16 ``(Q, frames)`` through the generic sharded, resumable
  extraction (``bins/extract_features.py --features encodec_codes --set encodec_codes.model=tiny-random``);
  :func:`load_codes` reads one back as ``(frames, Q)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from processors.audio import resample
from processors.features.base import CodeExtractor, FeatureError
from processors.features.store import load_feature
from utils.registry import register
from utils.rng import seeded

logger = logging.getLogger(__name__)

ENCODEC_24KHZ = "facebook/encodec_24khz"
TINY_RANDOM = "tiny-random"


class CodecError(RuntimeError):
    """The codec cannot be loaded or given input it cannot encode; the message names the culprit."""


def tiny_encodec_config():
    """A tiny EnCodec with the real layout: 24 kHz, hop 320 (75 Hz), 1024-entry codebooks, 8 codebooks at 6 kbps."""
    from transformers import EncodecConfig

    return EncodecConfig(
        num_filters=4, hidden_size=16, codebook_dim=16, codebook_size=1024, num_lstm_layers=1,
        target_bandwidths=[1.5, 6.0],
    )  # fmt: skip


class EncodecCodec:
    """Frozen EnCodec wrapper. Codes are ``(frames, Q)`` (VALL-E's layout), waveforms float32 mono."""

    def __init__(self, model, bandwidth: float = 6.0, name: str = ""):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        cfg = model.config
        if bandwidth not in cfg.target_bandwidths:
            raise CodecError(f"codec {name or cfg.name_or_path}: bandwidth {bandwidth} not in {cfg.target_bandwidths}")
        self.name = name
        self.bandwidth = bandwidth
        self.sample_rate = int(cfg.sampling_rate)
        self.hop_length = int(np.prod(cfg.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop_length
        self.num_quantizers = int(model.quantizer.get_num_quantizers_for_bandwidth(bandwidth))
        self.codebook_size = int(cfg.codebook_size)

    @classmethod
    def load(cls, name: str = ENCODEC_24KHZ, bandwidth: float = 6.0, device: str = "cpu", seed: int = 0) -> "EncodecCodec":
        """``name``: a hub id or local folder, or ``"tiny-random"`` (tests only)."""
        if name == TINY_RANDOM:
            return cls.tiny_random(bandwidth, seed).to(device)
        from transformers import EncodecModel

        try:
            model = EncodecModel.from_pretrained(name)
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CodecError(
                f"codec {name!r} is neither in the local Hugging Face cache nor reachable ({first}); download it "
                f"once where the hub is reachable (huggingface-cli download {name}) or pass a local folder"
            ) from None
        return cls(model, bandwidth, name).to(device)

    @classmethod
    def tiny_random(cls, bandwidth: float = 6.0, seed: int = 0) -> "EncodecCodec":
        from transformers import EncodecModel

        logger.warning("using a TINY RANDOM EnCodec (tests/smoke runs only): its codes carry no speech")
        with seeded(seed):
            model = EncodecModel(tiny_encodec_config()).eval()
            _seed_codebooks(model)
        return cls(model, bandwidth, TINY_RANDOM)

    def to(self, device: Union[str, torch.device]) -> "EncodecCodec":
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def frames_for(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    @torch.no_grad()
    def encode(self, wav: Union[np.ndarray, torch.Tensor], sample_rate: int) -> torch.Tensor:
        """Mono ``wav (T,)`` at ``sample_rate`` -> codes ``(frames, Q)`` int64 (resampled to the codec's rate)."""
        wav = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        wav = wav.astype(np.float32).reshape(-1)
        if wav.size == 0:
            raise CodecError("cannot encode an empty waveform")
        if sample_rate != self.sample_rate:
            wav = resample(wav, sample_rate, self.sample_rate)
        x = torch.from_numpy(np.ascontiguousarray(wav)).to(self.device).view(1, 1, -1)
        codes = self.model.encode(x, bandwidth=self.bandwidth).audio_codes  # (chunks=1, 1, Q, frames)
        return codes[0, 0].transpose(0, 1).long().cpu()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Codes ``(frames, Q)`` -> float32 waveform ``(frames * hop,)`` at ``self.sample_rate``."""
        if codes.dim() != 2 or codes.shape[1] != self.num_quantizers:
            raise CodecError(f"codes must be (frames, {self.num_quantizers}), got {tuple(codes.shape)}")
        audio_codes = codes.long().transpose(0, 1).reshape(1, 1, self.num_quantizers, -1).to(self.device)
        wav = self.model.decode(audio_codes, [None]).audio_values
        return wav.reshape(-1).float().cpu().numpy()


@torch.no_grad()
def _seed_codebooks(model) -> None:
    """Codebooks of a random EnCodec from its own encoder outputs (transformers initialises them to zeros, and
    random vectors of the wrong scale map every frame to one code): each residual stage picks its entries
    among the residual frames of a seeded noise/tone signal, so codes follow the input."""
    rate = model.config.sampling_rate
    t = torch.arange(8 * rate) / rate
    envelope = 0.05 + 0.5 * torch.rand(t.numel() // 2400).repeat_interleave(2400)[: t.numel()]
    signal = envelope * (torch.sin(2 * torch.pi * (100 + 300 * torch.rand(1)) * t * (1 + t)) + torch.randn(t.numel()) * 0.3)
    residual = model.encoder(signal.view(1, 1, -1))  # (1, D, frames)
    for layer in model.quantizer.layers:
        frames = residual[0].transpose(0, 1)
        pick = torch.randint(0, frames.shape[0], (layer.codebook.embed.shape[0],))
        layer.codebook.embed.copy_(frames[pick] + 0.01 * frames.std() * torch.randn_like(frames[pick]))
        layer.codebook.embed_avg.copy_(layer.codebook.embed)
        residual = residual - layer.decode(layer.encode(residual))


@dataclass(frozen=True)
class EncodecCodesSettings:
    """``model``: hub id, local folder or ``tiny-random``; ``sample_rate`` must be the codec's (24 kHz)."""

    sample_rate: int = 24000
    model: str = ENCODEC_24KHZ
    bandwidth: float = 6.0


@register("feature", "encodec_codes")
class EncodecCodes(CodeExtractor):
    """EnCodec codes ``(Q, frames)`` int16 (Q = 8 at 6 kbps), one item at a time (no padding effects).

    The codec loads when the extractor is built, so a missing model or a rate that differs from ``sample_rate``
    (the driver loads the audio at ``sample_rate``) fails the run once, before any item, instead of every item.
    """

    Settings = EncodecCodesSettings

    def __init__(self, settings=None, device: str = "cpu", codec: Optional[EncodecCodec] = None):
        super().__init__(settings, device)
        if codec is None:
            try:
                codec = EncodecCodec.load(self.settings.model, self.settings.bandwidth, self.device)
            except CodecError as err:
                raise FeatureError(f"encodec_codes: {err}") from err
        if codec.sample_rate != self.sample_rate:
            raise FeatureError(f"encodec_codes: codec {self.settings.model!r} runs at {codec.sample_rate} Hz, "
                               f"settings say sample_rate={self.sample_rate}")  # fmt: skip
        self.codec = codec

    @classmethod
    def frame_shift_of(cls, description) -> Optional[float]:
        return None  # the codec's hop is not in feature.json (settings name the model, not its layout)

    @property
    def frame_shift(self) -> Optional[float]:
        return self.codec.hop_length / self.sample_rate  # one code frame per codec hop

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> List[torch.Tensor]:
        return [self.codec.encode(wav, self.sample_rate).transpose(0, 1) for wav in wavs]


def load_codes(features_dir: Union[str, Path], item_id: str, kind: str = "encodec_codes") -> torch.Tensor:
    """Stored codes of one item as int64 ``(frames, Q)`` (VALL-E's layout)."""
    return load_feature(features_dir, kind, item_id).long().transpose(0, 1)
