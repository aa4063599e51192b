"""``echelon-finetune`` for the HierSpeech++ synthesizer: speaker adaptation of the zero-shot voice converter.

HierSpeech++ already converts to an unseen voice from a few seconds of it; fine-tuning on the reader's
recordings is for voices that zero-shot conversion does not reach. The base is an Echelon ``hierspeechpp``
checkpoint dir or an official synthesizer ``.pth`` (its ``config.json`` beside it, loaded strictly with every
training-only part); the ``hierspeechpp`` finetuner here takes both.

**What is trained, and why** (``train.part_rates``; a part not listed is frozen). The conversion chain is
``enc_p_l(source SSL, F0) -> flow_l^-1 -> flow^-1 -> sn -> dec`` under the style ``g = emb_g(prompt mel)``:

* trained: the **decoder** ``dec`` (the waveform: the reader's timbre and recording colour), the **source
  network** ``sn`` (F0 and excitation under the reader's style: their pitch and voicing), and, at a lower rate,
  the acoustic **flow** (how the speaker-independent content becomes the acoustic latent for this style);
* frozen: ``enc_p_l`` and ``flow_l``, the speaker-agnostic content path every conversion starts from (trained on
  perturbed speech of thousands of speakers; a few minutes of one reader would only teach it to forget the
  others, and it carries the intelligibility); ``enc_q``, so that the reader's audio lands in the latent space
  the pretrained flow and decoder know (as in the VITS finetuner); ``enc_p``, whose distribution is the target
  the flow's KL pulls towards; the style encoder ``emb_g`` and the null style ``emb``, so that the reader's
  prompt keeps mapping to one fixed style vector which the trained parts learn to render as the reader; the
  prosody decoder (training-only, unused by conversion). The SSL model (MMS-300m layer 7) is never trained.

Each step is the released objective (:mod:`models.tts.hierspeechpp.training`) without CFG style dropout and
without the NANSY perturbation (it only serves the frozen speaker-agnostic prior), against a light MS-STFT
discriminator trained from scratch (no released synthesizer ships its discriminator; the released MPD + 5 STFT
resolutions cost ~41.6 M parameters). Whole utterances go to the encoders, so each one's SSL features are
computed once and kept.

**How it speaks** (:meth:`HierSpeechFinetuner.speak`): the held-out sentences need source speech. A registered
TTS pipeline (``source_voice``, e.g. the converted Piper joe voice: ``echelon-convert-piper joe exp/joe``) reads
them once, at the asked tempo (its duration scale), and each is converted to the adapted voice with the reader's
longest recording as the prompt: the converted speech keeps the source's timing. With a TTV checkpoint (``ttv``)
the ``hierspeechpp_tts`` pipeline speaks them instead, from text, with the current synthesizer. Where they come
from: the constructor's arguments, else ``$ECHELON_FINETUNE_SOURCE_VOICE`` / ``$ECHELON_FINETUNE_TTV``, else
``exp/joe`` under the current directory when it exists.

**What it writes** (:meth:`HierSpeechFinetuner.save_voice`): a ``hierspeechpp`` checkpoint (``echelon-infer
--ckpt_dir EXP/voice --source a.wav --prompt EXP/voice/prompt.wav``) with the prompt beside it. Conversion keeps
the source's timing, so ``tempo`` is not applied to it (recorded in meta.json); with a TTV, ``tts.json5`` beside
it is the TTS pipeline of the voice at that tempo. :meth:`HierSpeechFinetuner.export`: the ONNX ``vc`` graph.

Measured: nothing about quality. Official weights and MMS-300m are not reachable here; the only run is the
plumbing test on tiny random weights (``tests/models/hierspeechpp/test_finetune_plumbing.py``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from models.base import checkpoint as ckpt
from models.base.experiment_config import experiment_config
from models.base.finetune import (EvalCallback, FinetuneBudget, FinetuneError, Progress, TrainingReport,
                                  VoiceFinetuner, evaluate_during_training, stop_cause)
from models.base.frozen import FrozenComponent
from models.base.infer_settings import by_role
from models.base.pipeline import load_pipeline
from models.base.pretrained import in_hub_cache
from models.base.tasks import Audio, load_input
from models.tts.hierspeechpp.checkpoint import load_official_checkpoint
from models.tts.hierspeechpp.config import (DiscriminatorConfig, HierSpeechDataConfig, HierSpeechExperimentConfig,
                                            HierSpeechPPConfig, HierSpeechTrainConfig, SSLConfig)
from models.tts.hierspeechpp.inference import SAMPLE_RATE, VCOptions, VoiceConverter, load_echelon_synthesizer
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.tts.hierspeechpp.trainer import HierSpeechTrainer
from processors.audio import load_audio
from processors.data.manifest import read_manifest
from utils.config import ConfigError, to_dict, validate
from utils.io import make_temp_dir, publish_dir
from utils.registry import register

log = logging.getLogger(__name__)

SOURCE_VOICE_ENV = "ECHELON_FINETUNE_SOURCE_VOICE"
TTV_ENV = "ECHELON_FINETUNE_TTV"
DEFAULT_SOURCE_VOICE = Path("exp") / "joe"  # where `make serve` converts the Piper joe voice
PROMPT_FILE = "prompt.wav"
TTS_SPEC_FILE = "tts.json5"


@dataclass
class HierSpeechFinetuneTrainConfig(HierSpeechTrainConfig):
    """A fine-tuning run's settings: the learning rate of each trained part (the others are frozen)."""

    part_rates: Dict[str, float] = field(default_factory=lambda: {"dec": 1e-4, "sn": 1e-4, "flow": 2e-5})
    lr_discriminator: float = 1e-4
    uncond_ratio: float = 0.0  # no CFG style dropout: the null style is frozen and conversion never uses it


@experiment_config("hierspeechpp_finetune", model=HierSpeechPPConfig, data=HierSpeechDataConfig,
                   discriminator=DiscriminatorConfig, train=HierSpeechFinetuneTrainConfig)
class HierSpeechFinetuneExperimentConfig:
    """The base synthesizer's model and SSL, the reader's manifest, the fine-tuning settings."""


@register("trainer", "hierspeechpp_finetune")
class HierSpeechFinetuneTrainer(HierSpeechTrainer):
    """The ``hierspeechpp`` trainer with frozen parts (module doc), SSL features kept per utterance, and
    ``on_eval(step, cpu_minutes)`` every ``eval_every`` steps. ``ssl``: an SSL model already loaded (shared with
    the finetuner's conversions rather than loaded twice)."""

    config_class = HierSpeechFinetuneExperimentConfig
    on_eval: Optional[EvalCallback] = None
    eval_every: int = 0

    def __init__(self, config: Any, exp_dir: str | Path, *, ssl: Optional[nn.Module] = None, **kwargs: Any):
        self.given_ssl = ssl
        self.ssl_cache: Dict[str, torch.Tensor] = {}
        super().__init__(config, exp_dir, **kwargs)

    def build_frozen(self) -> Dict[str, Any]:
        frozen = super().build_frozen()
        if self.given_ssl is not None:
            frozen["ssl"] = FrozenComponent(self.given_ssl, frozen["ssl"].source)
        return frozen

    def build_optimizers(self, models):
        """One AdamW with a parameter group per trained part; the frozen parts lose their gradients."""
        t = self.cfg.train
        parts = dict(models["generator"].named_children())
        unknown = sorted(set(t.part_rates) - set(parts))
        if unknown:
            raise ConfigError(f"train.part_rates: {unknown} are not parts of the synthesizer ({', '.join(parts)})")
        groups = []
        for name, module in parts.items():
            lr = float(t.part_rates.get(name, 0.0))
            module.requires_grad_(lr > 0)
            if lr > 0:
                groups.append({"params": list(module.parameters()), "lr": lr})
        if not groups:
            raise ConfigError("train.part_rates gives no part a learning rate above 0: nothing to fine-tune")
        self.frozen_parts = [name for name in parts if not float(t.part_rates.get(name, 0.0)) > 0]
        return {"generator": torch.optim.AdamW(groups, betas=(0.8, 0.99), eps=1e-9),
                "discriminator": torch.optim.AdamW(models["discriminator"].parameters(), lr=t.lr_discriminator,
                                                   betas=(0.8, 0.99), eps=1e-9)}

    @torch.no_grad()
    def utterance_ssl(self, batch: Dict[str, Any]) -> torch.Tensor:
        """SSL features ``(B, C, T)`` of the batch's whole utterances, each computed once."""
        hop, frames = self.cfg.data.hop_length, batch["audio"].size(-1) // self.cfg.data.hop_length
        rows = []
        for b, item_id in enumerate(batch["ids"]):
            if item_id not in self.ssl_cache:
                n = int(batch["lengths"][b])
                self.ssl_cache[item_id] = self._ssl_features(batch["audio"][b:b + 1, :, :n * hop],
                                                             batch["lengths"][b:b + 1])[0]
            rows.append(self.ssl_cache[item_id])
        return torch.stack([nn.functional.pad(r, (0, frames - r.size(-1))) for r in rows])

    def features(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        if "ssl" not in batch and self.cfg.data.max_frames is None:  # uncropped items: the same SSL every epoch
            batch = {**batch, "ssl": self.utterance_ssl(batch)}
        return super().features(batch)

    def train_step(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        gen = self.unwrap("generator")
        for name in self.frozen_parts:
            getattr(gen, name).eval()
        return super().train_step(batch)

    def after_step(self) -> None:
        evaluate_during_training(self, self.on_eval, self.eval_every)


def load_base(path: Path) -> Tuple[HierSpeechPPSynthesizer, HierSpeechExperimentConfig, str]:
    """The base synthesizer (every part), its experiment config and what it is: an official ``.pth`` (+ its
    ``config.json``; SSL: MMS-300m layer 7) or an Echelon ``hierspeechpp`` checkpoint dir."""
    if path.suffix == ".pth":
        model = load_official_checkpoint(path)
        return model, validate({"model": to_dict(model.config)}, HierSpeechExperimentConfig), "official checkpoint"
    model, raw = load_echelon_synthesizer(path)
    return model, validate(raw, HierSpeechExperimentConfig), "Echelon checkpoint"


def check_ssl_reachable(ssl: SSLConfig, base: Path) -> None:
    """Fail before any work when the SSL model the synthesizer reads is neither a local folder nor cached."""
    if ssl.random_tiny_dim > 0 or Path(ssl.model).expanduser().is_dir() or in_hub_cache(ssl.model):
        return
    raise FinetuneError(f"--base_ckpt_dir {base}: HierSpeech++ reads SSL features of {ssl.model!r} (layer "
                        f"{ssl.layer}), which is not in the local Hugging Face cache and the hub is not used here: "
                        f"download it once where the hub is reachable (huggingface-cli download {ssl.model}) and "
                        "copy the cache to this machine")


def chosen_path(given: Optional[str | Path], env: str, default: Optional[Path] = None) -> Optional[str]:
    value = given or os.environ.get(env) or (default if default is not None and default.exists() else None)
    return str(value) if value else None


def with_tempo(pipeline: Any, tempo: float) -> Any:
    """The TTS pipeline ``tempo`` times slower than its own default (through its duration scale, if it has one)."""
    name = by_role("duration_scale").name
    current = getattr(pipeline.settings, name, None)
    if current is None:
        if tempo != 1.0:
            log.warning("the source voice has no %s setting: held-out sentences are read at its own tempo", name)
        return pipeline
    return pipeline.with_settings({name: float(current) * tempo})


@register("finetuner", "hierspeechpp")
class HierSpeechFinetuner(VoiceFinetuner):
    """A HierSpeech++ synthesizer being adapted to one reader (see the module doc)."""

    sample_rate = SAMPLE_RATE
    #: the light discriminator trained from scratch against the generator (MS-STFT only; no MPD)
    discriminator = DiscriminatorConfig(periods=[], resolutions=[[1024, 256, 1024], [512, 128, 512], [256, 64, 256]])
    max_batch = 4  # whole utterances of up to 12 s go through the encoders

    def __init__(self, base_ckpt_dir: Path, exp_dir: Path, source_voice: Optional[str | Path] = None,
                 ttv: Optional[str | Path] = None) -> None:
        super().__init__(base_ckpt_dir, exp_dir)
        self.model, self.base_cfg, self.base_kind = load_base(self.base_ckpt_dir)
        self.model.eval()
        self.frame_rate_hz = self.sample_rate / self.base_cfg.data.hop_length
        self.ttv = chosen_path(ttv, TTV_ENV)
        self.source_voice = None if self.ttv else chosen_path(source_voice, SOURCE_VOICE_ENV, DEFAULT_SOURCE_VOICE)
        if self.ttv is None and self.source_voice is None:
            raise FinetuneError(f"--base_ckpt_dir {base_ckpt_dir}: a HierSpeech++ synthesizer converts speech, so "
                                "its held-out sentences are read by another voice first: convert one "
                                f"(echelon-convert-piper joe {DEFAULT_SOURCE_VOICE}) or name a TTS checkpoint in "
                                f"${SOURCE_VOICE_ENV} (or a HierSpeech++ TTV checkpoint in ${TTV_ENV})")
        check_ssl_reachable(self.base_cfg.data.ssl, self.base_ckpt_dir)
        self.trainer: Optional[HierSpeechFinetuneTrainer] = None
        self.manifest: Optional[Path] = None
        self._ssl: Optional[nn.Module] = None
        self._source_tts: Any = None
        self._prompt: Optional[Tuple[np.ndarray, Path]] = None
        self._source_speech: Dict[Tuple[Tuple[str, ...], float, int], List[np.ndarray]] = {}

    # ------------------------------------------------------------------ base voice
    def ssl_model(self) -> nn.Module:
        """The frozen SSL model of the synthesizer, loaded once (an unreachable model is a one-line error)."""
        if self._ssl is None:
            ssl = self.base_cfg.data.ssl
            self._ssl = VoiceConverter.build_ssl(ssl.model, ssl.layer, ssl.random_tiny_dim).eval()
        return self._ssl

    def prepare_base(self, cache_dir: Path, progress: Optional[Progress] = None) -> Dict[str, Any]:
        self.ssl_model()
        if self.ttv:
            speech = f"read from text by the hierspeechpp_tts pipeline with TTV {self.ttv}"
        else:
            self.source_tts()
            speech = f"read by {self.source_voice}, converted to the reader's voice"
        rates = HierSpeechFinetuneTrainConfig().part_rates
        return {"synthesizer": f"{self.base_kind} {self.base_ckpt_dir}", "held-out speech": speech,
                "trained parts": ", ".join(f"{part} (lr {lr:g})" for part, lr in rates.items())}

    def source_tts(self) -> Any:
        """The TTS pipeline of ``source_voice``, loaded once."""
        if self._source_tts is None:
            tts = load_pipeline(self.source_voice)
            if getattr(tts, "task", "") != "tts":
                raise FinetuneError(f"source voice {self.source_voice}: a {tts.task!r} pipeline, not a TTS voice")
            self._source_tts = tts
        return self._source_tts

    # ------------------------------------------------------------------ speaking
    def reader_prompt(self) -> Tuple[np.ndarray, Path]:
        """The reader's longest utterance (16 kHz) and its file: the style prompt of every conversion. Before
        training it comes from the manifest ``echelon-finetune`` writes, ``EXP/data/train.jsonl``."""
        if self._prompt is None:
            manifest = self.manifest or self.exp_dir / "data" / "train.jsonl"
            if not manifest.is_file():
                raise FinetuneError(f"{manifest}: no utterances of the reader yet; HierSpeech++ speaks in the voice "
                                    "of a recording of theirs")
            longest = max(read_manifest(manifest), key=lambda entry: float(entry.duration or 0.0))
            self._prompt = (load_audio(longest.path, SAMPLE_RATE), Path(longest.path))
        return self._prompt

    def current_model(self) -> HierSpeechPPSynthesizer:
        return self.trainer.unwrap("generator") if self.trainer is not None else self.model

    def inference_copy(self) -> HierSpeechPPSynthesizer:
        """The current weights in a fresh model (conversion folds weight norm in place, training must not see it)."""
        model = HierSpeechPPSynthesizer.from_config(self.base_cfg.model)
        model.load_state_dict(self.current_model().state_dict(), strict=True)
        return model.drop_training_modules().eval()

    def source_speech(self, texts: Sequence[str], tempo: float, seed: int) -> List[np.ndarray]:
        """The source voice reading ``texts`` at 16 kHz (the same every evaluation: read once)."""
        key = (tuple(texts), round(float(tempo), 6), int(seed))
        if key not in self._source_speech:
            tts = with_tempo(self.source_tts(), tempo)
            audio = tts.synthesize(list(texts), seed=seed)
            self._source_speech[key] = [load_input(a, SAMPLE_RATE).waveform for a in audio]
        return self._source_speech[key]

    def speak(self, texts: Sequence[str], tempo: float = 1.0, seed: int = 0) -> List[Tuple[np.ndarray, int]]:
        if self.ttv:
            return self.speak_from_text(texts, tempo, seed)
        sources = self.source_speech(texts, tempo, seed)
        prompt, _ = self.reader_prompt()
        converter = VoiceConverter(self.inference_copy(), self.ssl_model(), warm_up=False)
        wavs = converter.convert(sources, [prompt], VCOptions(seed=seed, batch_size=1))
        return [(wav, SAMPLE_RATE) for wav in wavs]

    def speak_from_text(self, texts: Sequence[str], tempo: float, seed: int) -> List[Tuple[np.ndarray, int]]:
        """The ``hierspeechpp_tts`` pipeline with the TTV and the current synthesizer (written to ``EXP/train``)."""
        folder = self.save_voice(self.exp_dir / "train" / "speaking_voice", tempo)
        tts = load_pipeline(folder.parent.parent / TTS_SPEC_FILE)
        prompt, _ = self.reader_prompt()
        audio = tts.synthesize(list(texts), prompts=[Audio(prompt, SAMPLE_RATE)], seed=seed)
        return [(a.waveform, a.sample_rate) for a in audio]

    # ------------------------------------------------------------------ training
    def experiment_config(self, manifest: Path, budget: FinetuneBudget,
                          progress: bool) -> HierSpeechFinetuneExperimentConfig:
        items = len(read_manifest(manifest))
        return self.config_for(str(manifest), items, budget, progress)

    def check_settings(self) -> None:
        self.config_for("", 1, FinetuneBudget(), False)

    def config_for(self, manifest: str, items: int, budget: FinetuneBudget,
                   progress: bool) -> HierSpeechFinetuneExperimentConfig:
        raw = to_dict(self.base_cfg)
        raw["model_type"] = HierSpeechFinetuneExperimentConfig.model_type
        raw["data"].update(format="files", train_manifest=manifest, valid_manifest=None, features_dir=None,
                           max_frames=None, aug=False, cache=True)
        raw["discriminator"] = to_dict(self.discriminator)
        raw["train"] = {"seed": budget.seed, "batch_size": max(1, min(self.max_batch, items)),
                        "max_steps": budget.max_steps or 10**9, "cpu_minutes": budget.cpu_minutes, "log_every": 10,
                        "valid_every": 0, "save_every": max(budget.eval_every, 1), "keep_last": 1,
                        "tensorboard": False, "progress_bar": progress}
        return validate(self.with_settings(raw), HierSpeechFinetuneExperimentConfig)

    def train(self, manifest: Path, budget: FinetuneBudget, on_eval: EvalCallback, resume: bool,
              progress: bool = True) -> TrainingReport:
        self.manifest = Path(manifest)
        cfg = self.experiment_config(self.manifest, budget, progress)
        train_dir = self.exp_dir / "train"
        resuming = resume and ckpt.latest_valid_checkpoint(train_dir / "checkpoints") is not None
        trainer = HierSpeechFinetuneTrainer(cfg, train_dir, resume=resuming, cpu=True, ssl=self.ssl_model())
        if not resuming:
            trainer.unwrap("generator").load_state_dict(self.model.state_dict(), strict=True)
        trainer.on_eval, trainer.eval_every = on_eval, budget.eval_every
        self.trainer = trainer
        trainer.train(quiet=not progress)
        spent = trainer.cpu_minutes_used()
        return TrainingReport(trainer.step, spent, stop_cause(trainer, budget),
                              {"exit_code": trainer.interrupted, "frozen_parts": list(trainer.frozen_parts),
                               "precision": trainer.accelerator.mixed_precision})

    # ------------------------------------------------------------------ output
    def save_voice(self, out_dir: Path, tempo: float) -> Path:
        """``out_dir``: a ``hierspeechpp`` checkpoint of the current weights, the prompt beside it, and with a
        TTV ``tts.json5`` (the TTS pipeline of this voice, ``tempo`` times slower); published atomically."""
        out_dir = Path(out_dir)
        _, prompt_path = self.reader_prompt()
        step = self.trainer.step if self.trainer is not None else 0
        meta = {"finetune": {"base": str(self.base_ckpt_dir), "step": step, "prompt": PROMPT_FILE,
                             "tempo": round(tempo, 4) if self.ttv else "not applied: conversion keeps the "
                                                                       "source's timing"}}
        config = {**to_dict(self.base_cfg), "model_type": "hierspeechpp"}
        tmp = make_temp_dir(out_dir.parent)
        try:
            ckpt.save_checkpoint(tmp / "checkpoints", step, models={"generator": self.current_model()},
                                 config=config, extra_meta=meta)
            shutil.copyfile(prompt_path, tmp / PROMPT_FILE)
            if self.ttv:
                spec = {"pipeline": "hierspeechpp_tts", "infer": {by_role("duration_scale").name: tempo},
                        "components": {"ttv": str(Path(self.ttv).resolve()), "synthesizer": "."}}
                (tmp / TTS_SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
            publish_dir(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ckpt.resolve_checkpoint_dir(out_dir)

    def export(self, voice_dir: Path, onnx_path: Path) -> List[Path]:
        """The voice's ONNX ``vc`` graph (SSL, F0 and the prompt's mel stay outside it:
        :mod:`models.tts.hierspeechpp.onnx_export`)."""
        from models.tts.hierspeechpp.onnx_export import export_checkpoint

        return export_checkpoint(voice_dir, onnx_path)
