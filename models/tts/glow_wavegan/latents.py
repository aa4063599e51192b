"""Stage-1 latents for stage-2 training: the registered feature ``glow_wavegan_latent``.

For an utterance of N samples the frozen stage-1 encoder gives the posterior ``(mean, log_std)``, stored as one
``(2, D, N // hop)`` float32 tensor (``[0]`` mean, ``[1]`` log-std) at ``<features_dir>/glow_wavegan_latent/<id>.pt``
by the generic extraction driver (parallel, resumable, sharded: processors/data/extract.py)::

    python -m bins.extract_features --manifest data/train.jsonl --out_dir exp/gwg/features \\
        --features glow_wavegan_latent --set glow_wavegan_latent.stage1_ckpt=exp/gwg/stage1

Storing the posterior (not a sample) lets stage 2 draw a fresh ``z ~ q(z|x)`` every step without running the
waveform encoder.  The encoder is the stage-1 checkpoint's VAE loaded as a frozen component
(:func:`models.tts.glow_wavegan.vae.frozen_stage1`).  The feature's description (``feature.json``) records ``D``,
the hop, the stage-1 checkpoint's fingerprint (config hash @ step) and its source (dir, step, weights' sha256),
so the driver refuses to mix latents of two checkpoints and :class:`LatentStore` refuses latents whose ``D`` or
checkpoint differ from the stage-2 config (one line naming ``feature.json``): the acoustic model must learn
exactly the distribution the decoder was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from models.base import checkpoint as ckpt
from processors.features.base import FeatureError, FeatureExtractor
from processors.features.store import FEATURE_INFO, feature_path, load_feature
from utils.config import validate
from utils.registry import register

LATENT_FEATURE = "glow_wavegan_latent"


class LatentError(ValueError):
    """A latent directory or file does not match what the stage-2 config expects."""


@dataclass(frozen=True)
class LatentSettings:
    stage1_ckpt: str = ""  # stage-1 experiment or checkpoint dir (required)
    sample_rate: int = 0  # 0: the stage-1 checkpoint's rate (any other value must equal it)


def stage1_description(stage1_ckpt: str | Path) -> Dict[str, Any]:
    """What identifies latents of a stage-1 checkpoint: its resolved dir, fingerprint, ``D``, hop and rate."""
    from models.tts.glow_wavegan.config import WaveGANExperimentConfig
    from models.tts.glow_wavegan.vae import stage1_fingerprint

    ckpt_dir = ckpt.resolve_checkpoint_dir(stage1_ckpt)
    cfg = validate(ckpt.read_config(ckpt_dir), WaveGANExperimentConfig)
    return {"stage1_ckpt": str(ckpt_dir), "stage1_fingerprint": stage1_fingerprint(ckpt_dir),
            "latent_channels": cfg.model.latent_channels, "hop_length": cfg.model.hop_length,
            "stage1_sample_rate": cfg.data.sample_rate}


@register("feature", "glow_wavegan_latent")
class GlowWaveGANLatentFeature(FeatureExtractor):
    """``(N,)`` audio -> ``(2, D, N // hop)``: posterior mean and log-std of the frozen stage-1 encoder."""

    Settings = LatentSettings
    batched = True  # a neural model: one copy, in the calling process, on ``device``

    def __init__(self, settings: Any = None, device: str = "cpu") -> None:
        from models.tts.glow_wavegan.vae import load_vae_checkpoint

        super().__init__(settings, device)
        if not self.settings.stage1_ckpt:
            raise FeatureError(f"{LATENT_FEATURE}: set stage1_ckpt (--set {LATENT_FEATURE}.stage1_ckpt=DIR)")
        self.stage1 = stage1_description(self.settings.stage1_ckpt)
        rate = self.settings.sample_rate
        if rate and rate != self.stage1["stage1_sample_rate"]:
            raise FeatureError(f"{LATENT_FEATURE}: sample_rate {rate} differs from the stage-1 checkpoint's "
                               f"{self.stage1['stage1_sample_rate']} Hz")
        # the frozen stage-1 VAE; its source (checkpoint dir, step, weights' sha256) goes into feature.json
        self._model, _, component = load_vae_checkpoint(self.stage1["stage1_ckpt"], self.device)
        self.stage1_source = component.source

    @property
    def sample_rate(self) -> int:
        return int(self.stage1["stage1_sample_rate"])

    def describe(self) -> Dict[str, Any]:
        return {**super().describe(), **self.stage1, "stage1_source": self.stage1_source}

    @classmethod
    def frame_shift_of(cls, description) -> Optional[float]:
        hop, rate = description.get("hop_length"), description.get("stage1_sample_rate")  # the stage-1 VAE's
        return float(hop) / float(rate) if hop and rate else None

    @torch.no_grad()
    def extract_batch(self, wavs: Sequence[np.ndarray]) -> List[torch.Tensor]:
        out = []
        for wav in wavs:  # one at a time: no padding enters the encoder's receptive field
            mean, log_std = self._model.encode(torch.from_numpy(np.asarray(wav, np.float32)).to(self.device).view(1, 1, -1))
            out.append(torch.stack([mean[0], log_std[0]]).cpu())
        return out


@dataclass
class LatentStore:
    """Read side of the latents of one stage-1 checkpoint under ``features_dir``."""

    features_dir: Path
    description: Dict[str, Any]

    @classmethod
    def open(cls, features_dir: str | Path, expected_channels: Optional[int] = None,
             stage1_ckpt: Optional[str] = None) -> "LatentStore":
        """Check the recorded ``D`` and (when given) the stage-1 checkpoint's fingerprint."""
        info = Path(features_dir) / LATENT_FEATURE / FEATURE_INFO
        if not info.is_file():
            raise LatentError(f"{info}: not found (extract the {LATENT_FEATURE} feature with bins.extract_features)")
        description = json.loads(info.read_text(encoding="utf-8"))
        channels = int(description["latent_channels"])
        if expected_channels is not None and channels != expected_channels:
            raise LatentError(f"{info}: latents have {channels} channels but model.out_channels is {expected_channels}")
        if stage1_ckpt:
            found = stage1_description(stage1_ckpt)["stage1_fingerprint"]
            if description["stage1_fingerprint"] != found:
                raise LatentError(f"{info}: latents come from stage-1 checkpoint {description['stage1_fingerprint']} "
                                  f"({description['stage1_ckpt']}), but data.stage1_ckpt is {found} ({stage1_ckpt})")
        return cls(Path(features_dir), description)

    @property
    def latent_channels(self) -> int:
        return int(self.description["latent_channels"])

    def has(self, item_id: str) -> bool:
        return feature_path(self.features_dir, LATENT_FEATURE, item_id).is_file()

    def load(self, item_id: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_std)``, each ``(D, T)`` float32."""
        value = load_feature(self.features_dir, LATENT_FEATURE, item_id).float()
        if value.dim() != 3 or value.size(0) != 2 or value.size(1) != self.latent_channels:
            raise LatentError(f"{LATENT_FEATURE}/{item_id}: shape {tuple(value.shape)} is not (2, "
                              f"{self.latent_channels}, T)")
        return value[0], value[1]
