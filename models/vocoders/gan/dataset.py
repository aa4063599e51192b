"""Waveform clips for vocoder training: random ``segment_samples`` crops (train) or whole clips (valid).

The shared :class:`processors.data.crops.AudioCrops` (resumable crops, read per item) with this config's sizes;
crops may start at any sample. The trainer computes mels on the device.
"""

from __future__ import annotations

from models.vocoders.gan.config import VocoderDataConfig
from processors.data.crops import AudioCrops


class VocoderClips(AudioCrops):
    """Items: ``(1, segment_samples)`` float crops (``random_crop``) or ``(1, T)`` clips cut to whole hops."""

    def __init__(self, manifest: str, data: VocoderDataConfig, seed: int, random_crop: bool):
        super().__init__(manifest, sample_rate=data.sample_rate, segment_samples=data.segment_samples,
                         hop_length=data.hop_length, seed=seed, random_crop=random_crop,
                         max_valid_seconds=data.max_valid_seconds)  # fmt: skip
