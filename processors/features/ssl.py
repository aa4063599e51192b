"""SSL features (batched, in the calling process on ``device``): ``ssl`` ``(C, N // hop_length)``.

One layer of a wav2vec 2.0-family model (:class:`processors.ssl.SSLFeatureExtractor`) with the official
HierSpeech++ input padding (:func:`processors.ssl.official_ssl_input`); items of a batch are padded with masks so
each gives what it would give alone.  The model loads when the extractor is built, so a missing model fails
before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

import numpy as np
import torch

from processors.features.base import FeatureError, FeatureExtractor
from processors.ssl import DEFAULT_SSL_LAYER, DEFAULT_SSL_MODEL, SSLFeatureExtractor, official_ssl_input
from utils.registry import register


SSL_SAMPLE_RATE = 16000  # the rate every wav2vec 2.0-family model here was trained at


@dataclass(frozen=True)
class SSLSettings:
    model: str = DEFAULT_SSL_MODEL  # hub id or local directory
    layer: int = DEFAULT_SSL_LAYER
    sample_rate: int = SSL_SAMPLE_RATE
    hop_length: int = 320


@register("feature", "ssl")
class SSLFeature(FeatureExtractor):
    """``module``: an already built :class:`SSLFeatureExtractor` (tests, random demo models); its name and
    layer replace ``model``/``layer`` in the settings so ``feature.json`` records what made the files."""

    Settings = SSLSettings
    batched = True

    def __init__(self, settings: Optional[SSLSettings] = None, device: str = "cpu",
                 module: Optional[SSLFeatureExtractor] = None) -> None:
        super().__init__(settings, device)
        if module is None:
            module = SSLFeatureExtractor.from_pretrained(self.settings.model, layer=self.settings.layer)
        else:
            self.settings = replace(self.settings, model=module.name or type(module).__name__, layer=module.layer)
        self.module = module.to(device)
        # Frames are cut as N // hop_length and the audio is loaded at sample_rate: settings the model cannot
        # honour would give silently mis-sized or mis-rated features, so they are refused here.
        stride = int(np.prod(module.model.config.conv_stride))
        if self.settings.hop_length != stride or self.settings.sample_rate != SSL_SAMPLE_RATE:
            raise FeatureError(f"ssl: {self.settings.model} needs sample_rate={SSL_SAMPLE_RATE} and "
                               f"hop_length={stride} (got {self.settings.sample_rate} and {self.settings.hop_length})")

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> List[torch.Tensor]:
        """``(N_b,)`` waveforms -> ``(C, N_b // hop_length)`` each, computed as one padded batch."""
        inputs = [official_ssl_input(torch.from_numpy(w).unsqueeze(0))[0] for w in wavs]
        lengths = torch.tensor([x.numel() for x in inputs])
        batch = torch.zeros(len(inputs), int(lengths.max()))
        for b, x in enumerate(inputs):
            batch[b, : x.numel()] = x
        with torch.no_grad():
            feats, _ = self.module(batch.to(self.device), lengths.to(self.device))
        hop = self.settings.hop_length
        return [feats[b, :, : w.shape[0] // hop].float().cpu() for b, w in enumerate(wavs)]
