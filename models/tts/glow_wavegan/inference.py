"""Glow-WaveGAN text-to-speech: text -> stage 2 (flow, noise scale, length scale) -> latent -> stage-1 decoder.

Two checkpoints form one system, declared once as the pipeline ``glow_wavegan`` (:mod:`models.base.pipeline`):
component ``acoustic`` (the stage-2 experiment, required) and ``decoder`` (the stage-1 experiment whose decoder
is the vocoder; default: the stage-2 config's ``data.stage1_ckpt``). The decoder is loaded as a frozen component
of its checkpoint (:func:`models.tts.glow_wavegan.vae.frozen_stage1`; ``decoder_source`` = dir, step, sha256).

Pipeline spec (json5; paths relative to the spec)::

    {pipeline: "glow_wavegan", components: {acoustic: "exp/gwg/stage2", decoder: "exp/gwg/stage1"},
     infer: {noise_scale: 0.5, length_scale: 1.1}}

Python (the task-level :class:`models.base.tasks.TextToSpeech`)::

    tts = load_pipeline("exp/gwg/stage2")            # or the spec file / dict; overrides=["infer.noise_scale=0.5"]
    audio = tts.synthesize(["Hello there."], seed=0)[0]     # Audio(waveform float32 (T,), sample_rate)

CLI (``bins/infer.py``; the shared TTS runner: ``--text``/``--text_file``/``--jobs``, per-item failures listed)::

    echelon-infer --ckpt_dir exp/gwg/stage2 [--component decoder=exp/gwg/stage1] --text "Hello." --output_dir out
    echelon-infer --pipeline gwg.json5 --jobs jobs.jsonl --output_dir out --noise_scale 0.5
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.pipeline import PipelineMixin
from models.base.sentence_tts import SentenceSettings, SentenceTTS, Voice
from models.base.tasks import Capabilities
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig, LatentDataConfig
from models.tts.glow_wavegan.dataset import text_to_ids
from models.tts.glow_wavegan.vae import WaveGANVAE, load_vae_checkpoint
from processors.data.manifest import model_speaker_id
from processors.text.frontend import TextFrontend
from utils.config import validate
from utils.registry import register

log = logging.getLogger(__name__)
Speaker = Union[int, str, None]


@dataclass
class GlowWaveGANInferSettings(SentenceSettings):
    """Inference settings (the ``infer`` section of a pipeline spec / ``--set infer.KEY=VALUE``)."""

    noise_scale: float = 0.667  # std of the prior sample (glow-tts notebook default; re-tune for the latent)
    length_scale: float = 1.0  # > 1 speaks slower
    seed: int = 1234  # text k of a call draws from seed + 1000 k (models/base/sentence_tts.py)


@register("pipeline", "glow_wavegan")
class GlowWaveGANSynthesizer(SentenceTTS, PipelineMixin):
    """A stage-2 flow model and the frozen stage-1 VAE whose decoder turns its latents into audio."""

    task = "tts"
    settings_class = GlowWaveGANInferSettings
    components = {"acoustic": True, "decoder": False}
    main_component = "acoustic"

    def __init__(self, acoustic: GlowTTS, vae: WaveGANVAE, data: LatentDataConfig, sample_rate: int,
                 settings: Optional[GlowWaveGANInferSettings] = None, device: str | torch.device = "cpu",
                 decoder_source: Optional[Dict[str, Any]] = None):  # fmt: skip
        if acoustic.config.out_channels != vae.latent_channels:
            raise ValueError(f"stage 2 models {acoustic.config.out_channels}-channel latents but the stage-1 decoder "
                             f"takes {vae.latent_channels}")
        self.device = torch.device(device)
        self.acoustic = acoustic.to(self.device).eval()
        self.vae = vae.to(self.device).prepare_for_inference()
        self.data = data
        self.sample_rate = int(sample_rate)
        self.hop_length = vae.hop_length
        self.settings = settings or GlowWaveGANInferSettings()
        self.decoder_source = decoder_source or {}
        self.frontend = TextFrontend(add_blank=data.add_blank)

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]],
                        settings: Optional[GlowWaveGANInferSettings] = None,
                        device: str = "cpu") -> "GlowWaveGANSynthesizer":  # fmt: skip
        """``{"acoustic": stage-2 dir, "decoder": stage-1 dir or None}`` (None: the stage-2 ``data.stage1_ckpt``)."""
        path = ckpt.resolve_checkpoint_dir(components["acoustic"])
        cfg = validate(ckpt.expect_model_type(path, "glow_wavegan"), GlowWaveGANExperimentConfig)
        acoustic = GlowTTS.from_config(cfg.model)
        ckpt.load_state_dict_strict(acoustic, ckpt.load_model_weights(path, "acoustic"), str(path))
        stage1 = components.get("decoder") or cfg.data.stage1_ckpt
        if not stage1:
            raise ValueError(f"{path}: config has no data.stage1_ckpt; give the decoder component (stage-1 dir)")
        vae, vae_cfg, component = load_vae_checkpoint(stage1, device)
        log.info("glow_wavegan: acoustic %s, decoder %s (step %s)", path, component.source["path"],
                 component.source["step"])
        return cls(acoustic, vae, cfg.data, vae_cfg.data.sample_rate, settings, device, component.source)

    @property
    def capabilities(self) -> Capabilities:
        named = tuple(self.data.speakers) if self.acoustic.n_speakers > 1 else ()
        return Capabilities(tasks=frozenset({"tts"}), speakers=named)

    def _speaker_id(self, speaker: Speaker) -> Optional[torch.Tensor]:
        n = self.acoustic.n_speakers
        sid = model_speaker_id(speaker, self.data.speakers, n, has_embedding=n > 1)
        return None if sid is None else torch.tensor([sid], device=self.device)

    def voice(self, given: Voice) -> Speaker:
        self._speaker_id(given.speaker)  # an unknown speaker fails before any synthesis
        return given.speaker

    def synthesize_piece(self, text: str, voice: Speaker, generator: torch.Generator) -> np.ndarray:
        return self.synthesize_one(text, voice)[0]  # the prior sample comes from the (seeded) global torch RNG

    @torch.no_grad()
    def synthesize_one(self, text: str, speaker: Speaker = None) -> Tuple[np.ndarray, int]:
        """One text -> (float32 waveform of ``hop * frames`` samples, predicted latent frames); draws from the
        global torch RNG."""
        ids = torch.tensor([text_to_ids(text, self.data, self.frontend)], dtype=torch.long, device=self.device)
        out = self.acoustic.infer(ids, torch.tensor([ids.size(1)], device=self.device), sid=self._speaker_id(speaker),
                                  noise_scale=self.settings.noise_scale, length_scale=self.settings.length_scale)
        frames = int(out["y_lengths"][0])
        wav = self.vae.decode(out["y"][:, :, :frames])
        return wav[0, 0].float().cpu().numpy(), frames
