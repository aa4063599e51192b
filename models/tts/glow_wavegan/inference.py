"""Glow-WaveGAN text-to-speech: text -> stage 2 (flow, noise scale, length scale) -> latent -> stage-1 decoder.

Two checkpoints form one system: the stage-2 experiment (its config names the stage-1 checkpoint in
``data.stage1_ckpt``) and the stage-1 experiment whose decoder is the vocoder.

Python API (the task-level :class:`models.base.tasks.TextToSpeech`)::

    tts = GlowWaveGANSynthesizer.from_checkpoints("exp/gwg/stage2", stage1_ckpt="exp/gwg/stage1")
    audio = tts.synthesize(["Hello there."], seed=0)[0]     # Audio(waveform float32 (T,), sample_rate)

CLI (``bins/infer.py``)::

    echelon-infer --ckpt_dir exp/gwg/stage2 [--stage1_ckpt exp/gwg/stage1] --text "Hello." --output_dir out
    echelon-infer --ckpt_dir exp/gwg/stage2 --jobs jobs.jsonl --output_dir out   # {"id", "text", "speaker"?}

Texts that fail are skipped and listed in ``<output_dir>/bad_items.tsv``; the others are written.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.base.tasks import Audio, AudioInput, Capabilities, TextToSpeech
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.checkpoint import load_state_dict_strict
from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig, LatentDataConfig
from models.tts.glow_wavegan.dataset import text_to_ids
from models.tts.glow_wavegan.vae import WaveGANVAE, load_vae_checkpoint
from processors.audio import save_audio
from processors.text.frontend import TextError, TextFrontend
from utils.config import validate
from utils.io import atomic_write_text
from utils.registry import register

log = logging.getLogger(__name__)


@dataclass
class GlowWaveGANInferSettings:
    """Inference-time settings (the ``infer`` section of a pipeline spec)."""

    noise_scale: float = 0.667  # std of the prior sample (glow-tts notebook default; re-tune for the latent)
    length_scale: float = 1.0  # > 1 speaks slower


@register("pipeline", "glow_wavegan")
class GlowWaveGANSynthesizer(TextToSpeech):
    """A stage-2 flow model and the stage-1 VAE whose decoder turns its latents into audio.

    Pipeline declaration (the multi-checkpoint spec convention of models/base/pipeline.py): components
    ``acoustic`` (the stage-2 checkpoint, required) and ``decoder`` (the stage-1 checkpoint; default: the stage-2
    config's ``data.stage1_ckpt``), settings :class:`GlowWaveGANInferSettings`.
    """

    task = "tts"
    settings_class = GlowWaveGANInferSettings
    components = {"acoustic": True, "decoder": False}
    main_component = "acoustic"

    def __init__(self, acoustic: GlowTTS, vae: WaveGANVAE, data: LatentDataConfig, sample_rate: int,
                 device: str | torch.device = "cpu", noise_scale: float = 0.667, length_scale: float = 1.0):
        if acoustic.config.out_channels != vae.latent_channels:
            raise ValueError(f"stage 2 models {acoustic.config.out_channels}-channel latents but the stage-1 decoder "
                             f"takes {vae.latent_channels}")
        self.device = torch.device(device)
        self.acoustic = acoustic.to(self.device).eval()
        self.vae = vae.to(self.device).prepare_for_inference()
        self.data = data
        self.sample_rate = int(sample_rate)
        self.hop_length = vae.hop_length
        self.noise_scale = noise_scale
        self.length_scale = length_scale
        self.frontend = TextFrontend(add_blank=data.add_blank)

    @classmethod
    def from_checkpoints(cls, stage2_ckpt: str | Path, stage1_ckpt: str | Path | None = None,
                         device: str = "cpu") -> "GlowWaveGANSynthesizer":
        """Stage-2 experiment/checkpoint dir (+ stage-1 dir; default: the stage-2 config's ``data.stage1_ckpt``)."""
        path = ckpt.resolve_checkpoint_dir(stage2_ckpt)
        cfg = validate(ckpt.read_config(path), GlowWaveGANExperimentConfig)
        acoustic = GlowTTS.from_config(cfg.model)
        load_state_dict_strict(acoustic, ckpt.load_model_weights(path, "acoustic"), str(path))
        stage1 = stage1_ckpt or cfg.data.stage1_ckpt
        if not stage1:
            raise ValueError(f"{path}: config has no data.stage1_ckpt; give the stage-1 checkpoint explicitly")
        vae, vae_cfg, _ = load_vae_checkpoint(stage1, device)
        return cls(acoustic, vae, cfg.data, vae_cfg.data.sample_rate, device)

    @classmethod
    def from_components(cls, components, settings: Optional[GlowWaveGANInferSettings] = None,
                        device: str = "cpu") -> "GlowWaveGANSynthesizer":
        """Build from ``{"acoustic": stage-2 dir, "decoder": stage-1 dir or None}`` and the ``infer`` settings."""
        synth = cls.from_checkpoints(components["acoustic"], components.get("decoder"), device)
        settings = settings or GlowWaveGANInferSettings()
        synth.noise_scale, synth.length_scale = settings.noise_scale, settings.length_scale
        return synth

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}), speakers=tuple(self.data.speakers))

    def _speaker_id(self, speaker: Union[int, str, None]) -> Optional[torch.Tensor]:
        n = self.acoustic.n_speakers
        if n <= 1:
            if speaker not in (None, "", 0, "0"):
                raise ValueError(f"this model has a single speaker; got speaker {speaker!r}")
            return None
        if isinstance(speaker, str) and speaker in self.data.speakers:
            return torch.tensor([self.data.speakers.index(speaker)], device=self.device)
        try:
            sid = int(speaker)  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise ValueError(f"unknown speaker {speaker!r}; known: {list(self.data.speakers)[:10]}") from err
        if not 0 <= sid < n:
            raise ValueError(f"speaker id {sid} outside [0, {n})")
        return torch.tensor([sid], device=self.device)

    @torch.no_grad()
    def synthesize_one(self, text: str, speaker: Union[int, str, None] = None, noise_scale: Optional[float] = None,
                       length_scale: Optional[float] = None) -> Tuple[np.ndarray, int]:
        """One text -> (float32 waveform of ``hop * frames`` samples, predicted latent frames)."""
        ids = torch.tensor([text_to_ids(text, self.data, self.frontend)], dtype=torch.long, device=self.device)
        out = self.acoustic.infer(ids, torch.tensor([ids.size(1)], device=self.device), sid=self._speaker_id(speaker),
                                  noise_scale=self.noise_scale if noise_scale is None else noise_scale,
                                  length_scale=self.length_scale if length_scale is None else length_scale)
        frames = int(out["y_lengths"][0])
        wav = self.vae.decode(out["y"][:, :, :frames])
        return wav[0, 0].float().cpu().numpy(), frames

    def synthesize(self, texts: Sequence[str], prompts: Optional[Sequence[AudioInput]] = None,
                   prompt_texts: Optional[Sequence[str]] = None, speakers: Optional[Sequence[Union[int, str]]] = None,
                   seed: Optional[int] = None) -> List[Audio]:
        if prompts or prompt_texts:
            raise ValueError("glow_wavegan takes no audio prompt (named speakers only)")
        if speakers is not None and len(speakers) != len(texts):
            raise ValueError(f"{len(speakers)} speakers for {len(texts)} texts")
        if seed is not None:
            torch.manual_seed(seed)
        out = []
        for i, text in enumerate(texts):
            wav, _ = self.synthesize_one(text, None if speakers is None else speakers[i])
            out.append(Audio(wav, self.sample_rate))
        return out


def _read_text_jobs(args: argparse.Namespace) -> List[Tuple[str, str, Optional[str]]]:
    """(id, text, speaker) from --text, --text_file ("id|text" or plain lines) and --jobs (JSONL)."""
    jobs = [(f"text_{i:03d}", t, args.speaker) for i, t in enumerate(args.text or [])]
    if args.text_file:
        for number, line in enumerate(Path(args.text_file).read_text(encoding="utf-8").splitlines()):
            if line.strip():
                uid, sep, text = line.partition("|")
                jobs.append((uid.strip(), text.strip(), args.speaker) if sep else (f"line_{number:04d}", line.strip(), args.speaker))
    if args.jobs:
        for number, line in enumerate(Path(args.jobs).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                job = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{args.jobs}:{number}: not valid JSON: {err}") from err
            if "id" not in job or "text" not in job:
                raise ValueError(f"{args.jobs}:{number}: a job needs 'id' and 'text'")
            jobs.append((str(job["id"]), job["text"], job.get("speaker", args.speaker)))
    return jobs


@register("inference", "glow_wavegan")
class GlowWaveGANInference(BaseInference):
    """``echelon-infer`` entry: the stage-2 checkpoint is ``--ckpt_dir``; stage 1 from its config or ``--stage1_ckpt``."""

    config_class = GlowWaveGANExperimentConfig

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu") -> "GlowWaveGANInference":
        if ckpt_dir is None:
            raise ValueError("glow_wavegan inference: give --ckpt_dir (the stage-2 experiment or checkpoint dir)")
        _, cfg, _ = cls.load_checkpoint(ckpt_dir)
        pipeline = cls(cfg, {}, device)
        pipeline.ckpt_dir = ckpt_dir  # the stage-1 checkpoint may come from the command line: load in run()
        return pipeline

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--stage1_ckpt", help="stage-1 experiment/checkpoint dir (default: data.stage1_ckpt)")
        parser.add_argument("--text", action="append", help="text to speak (repeatable)")
        parser.add_argument("--text_file", help="one utterance per line, 'utt_id|text' or plain text")
        parser.add_argument("--jobs", help='JSONL of {"id", "text", "speaker"?} jobs')
        parser.add_argument("--speaker", help="speaker name (data.speakers) or id for multi-speaker models")
        parser.add_argument("--output_dir", default="glow_wavegan_out")
        parser.add_argument("--noise_scale", type=float, default=0.667)
        parser.add_argument("--length_scale", type=float, default=1.0)
        parser.add_argument("--seed", type=int, default=1234)

    def run(self, args: argparse.Namespace) -> List[Path]:
        jobs = _read_text_jobs(args)
        if not jobs:
            raise SystemExit("error: nothing to do (give --text, --text_file or --jobs)")
        synth = GlowWaveGANSynthesizer.from_checkpoints(self.ckpt_dir, args.stage1_ckpt, device=str(self.device))
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(args.seed)
        written: List[Path] = []
        bad: List[Tuple[str, str]] = []
        for uid, text, speaker in jobs:
            try:
                wav, _ = synth.synthesize_one(text, speaker, args.noise_scale, args.length_scale)
            except (TextError, ValueError) as err:
                bad.append((uid, str(err)))
                continue
            written.append(save_audio(out_dir / f"{uid}.wav", wav, synth.sample_rate))
        if bad:
            atomic_write_text(out_dir / "bad_items.tsv", "".join(f"{u}\t{r}\n" for u, r in bad))
            log.warning("%d input(s) failed, listed in %s", len(bad), out_dir / "bad_items.tsv")
        return written
