"""``echelon-finetune`` for VITS voices (Echelon checkpoints, converted Piper voices): the ``vits`` finetuner.

* :meth:`VITSFinetuner.prepare_base` gives the base voice a posterior encoder when it has none (a converted
  Piper voice: rebuilt by distillation, :mod:`models.tts.vits.posterior_distill`, cached per base voice);
* :meth:`VITSFinetuner.train` runs the ``vits_finetune`` trainer (:mod:`models.tts.vits.finetune_trainer`)
  in ``EXP/train`` under a CPU budget; ``--resume`` continues its newest checkpoint;
* :meth:`VITSFinetuner.save_voice` writes a plain ``vits`` checkpoint (``echelon-infer``, ``echelon-serve``)
  whose duration predictor speaks at the reader's measured tempo (:func:`fold_length_scale`);
* :meth:`VITSFinetuner.blend_with_base` moves the saved voice's decoder back towards the base voice's, which
  clears the haze a minute of speech leaves in the waveform at little cost in likeness (``finetune/blend.py``);
* :meth:`VITSFinetuner.export` writes Piper's ``.onnx`` + ``.onnx.json``.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.finetune import (EvalCallback, FinetuneBudget, FinetuneError, Progress, TrainingReport,
                                  VoiceFinetuner, stop_cause)
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.finetune_trainer import VITSFinetuneExperimentConfig, VITSFinetuneTrainer
from models.tts.vits.model import VITS
from models.tts.vits.piper import write_voice_dir
from models.tts.vits.posterior_distill import DistillSettings, cached_posterior
from models.tts.vits.text import text_frontend
from modules.weight_norm import move_towards
from processors.data.manifest import read_manifest
from processors.spectrogram import VitsLinearSpectrogram
from processors.text.frontend import TextError
from utils.config import to_dict, validate
from utils.registry import register
from utils.rng import seeded

log = logging.getLogger(__name__)

TEACHER_TEXTS = [Path(__file__).resolve().parents[3] / "processors" / "data" / "texts" / name
                 for name in ("echelon_sentences_more.txt", "echelon_sentences.txt")]


def fold_length_scale(model: VITS, length_scale: float) -> None:
    """Make ``model`` speak ``length_scale`` times slower at length scale 1, exactly: the duration predictor's
    output ``logw`` gains ``ln(length_scale)``. The stochastic predictor's last reverse step is its elementwise
    affine flow ``x = (x - m) * exp(-logs)`` (channel 0 becomes ``logw``), so ``m[0]`` moves by
    ``-ln(s) * exp(logs[0])``; the deterministic one's projection bias moves by ``ln(s)``."""
    if not length_scale > 0:
        raise ValueError(f"length_scale must be positive, got {length_scale}")
    shift = math.log(length_scale)
    with torch.no_grad():
        if model.use_sdp:
            affine = model.dp.flows[0]
            affine.m[0] -= shift * torch.exp(affine.logs[0])
        else:
            model.dp.proj.bias += shift


def read_texts(paths: Sequence[Path]) -> List[str]:
    lines = []
    for path in paths:
        lines += [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@register("finetuner", "vits")
class VITSFinetuner(VoiceFinetuner):
    """A VITS voice being adapted (see the module doc)."""

    distill = DistillSettings()  # how a missing posterior encoder is rebuilt (tests make it small)

    def __init__(self, base_ckpt_dir: Path, exp_dir: Path) -> None:
        super().__init__(base_ckpt_dir, exp_dir)
        self.src = ckpt.resolve_checkpoint_dir(base_ckpt_dir)
        self.base_cfg: VITSExperimentConfig = validate(ckpt.read_config(self.src), VITSExperimentConfig)
        if self.base_cfg.model.n_speakers > 1:
            raise FinetuneError(f"--base_ckpt_dir {base_ckpt_dir}: a {self.base_cfg.model.n_speakers}-speaker "
                                "VITS; echelon-finetune adapts single-speaker voices")
        self.sample_rate = self.base_cfg.data.sample_rate
        self.voice_rate = self.sample_rate  # the fine-tuned voice's output rate (set_playback_ratio)
        self.frontend = text_frontend(self.base_cfg.data)
        self.model = VITS.from_config(self.base_cfg.model)
        self.model.load_state_dict(ckpt.load_model_weights(self.src, "generator"), strict=True)
        self.model.eval()
        self.trainer: Optional[VITSFinetuneTrainer] = None
        self.blended: Optional[VITS] = None  # blend_with_base's voice, which speak and save_voice use once set
        self.blended_step, self.blend_weight = 0, 1.0
        self.reinitialised = list(ckpt.read_meta(self.src).get("piper", {}).get("reinitialised", []))

    # ------------------------------------------------------------------ base voice
    def prepare_base(self, cache_dir: Path, progress: Optional[Progress] = None) -> Dict[str, Any]:
        if not any(part.startswith("enc_q") for part in self.reinitialised):
            return {"posterior_encoder": "from the base checkpoint"}
        ids = [list(self.frontend(t)["ids_blank"]) for t in read_texts(TEACHER_TEXTS)]
        spectrogram = VitsLinearSpectrogram(self.base_cfg.data.filter_length, self.base_cfg.data.hop_length,
                                            self.base_cfg.data.win_length)
        fit = cached_posterior(self.model, ckpt.sha256_of(self.src / "generator.safetensors"), ids, Path(cache_dir),
                               spectrogram, self.distill, progress)
        return {"posterior_encoder": "rebuilt by distillation from the base voice", **fit}

    @property
    def frame_rate_hz(self) -> float:
        """Latent frames per second of the voice as played (the buzz lines move with the playback rate)."""
        return self.voice_rate / self.base_cfg.data.hop_length

    def set_playback_ratio(self, ratio: float) -> int:
        """The voice's config declares ``ratio`` x the base rate: training loads the recordings at that rate
        (the decoder, which counts samples, sees them slowed), and every output is played at it."""
        if not ratio > 0:
            raise ValueError(f"playback ratio must be positive, got {ratio}")
        self.voice_rate = int(round(self.sample_rate * ratio))
        return self.voice_rate

    def voice_config(self) -> VITSExperimentConfig:
        """The base voice's config at the fine-tuned voice's output rate."""
        cfg = copy.deepcopy(self.base_cfg)
        cfg.data.sample_rate = self.voice_rate
        return cfg

    def check_text(self, text: str) -> Optional[str]:
        try:
            self.frontend(text)
        except (TextError, ValueError) as err:
            return str(err)
        return None

    # ------------------------------------------------------------------ speaking
    def current_model(self) -> VITS:
        if self.blended is not None:
            return self.blended
        return self.trainer.unwrap("generator") if self.trainer is not None else self.model

    @torch.no_grad()
    def speak(self, texts: Sequence[str], tempo: float = 1.0, seed: int = 0) -> List[Tuple[np.ndarray, int]]:
        model = self.current_model()
        was_training = model.training
        model.eval()
        out = []
        for index, text in enumerate(texts):
            ids = torch.tensor([list(self.frontend(text)["ids_blank"])])
            with seeded(seed + index, ids.device):
                result = model.infer(ids, torch.tensor([ids.size(1)]), noise_scale=0.667, noise_scale_w=0.8,
                                     length_scale=tempo)
            out.append((result["wav"][0, 0, : int(result["lengths"][0])].float().numpy(), self.voice_rate))
        model.train(was_training)
        return out

    # ------------------------------------------------------------------ training
    def experiment_config(self, manifest: Path, budget: FinetuneBudget) -> VITSFinetuneExperimentConfig:
        items = len(read_manifest(manifest))
        return self.config_for(str(manifest), items, budget)

    def check_settings(self) -> None:
        self.config_for("", 1, FinetuneBudget())

    def config_for(self, manifest: str, items: int, budget: FinetuneBudget) -> VITSFinetuneExperimentConfig:
        raw = to_dict(self.voice_config())
        raw["model_type"] = "vits_finetune"
        raw["data"].update(train_manifest=manifest, valid_manifest=None, max_text_len=1000)
        raw["train"] = {"seed": budget.seed, "batch_size": max(1, min(8, items)), "max_steps": budget.max_steps or 10**9,
                        "cpu_minutes": budget.cpu_minutes, "log_every": 10, "valid_every": 0,
                        "save_every": max(budget.eval_every, 1), "keep_last": 1, "tensorboard": False,
                        "segment_samples": self.base_cfg.train.segment_samples}
        return validate(self.with_settings(raw), VITSFinetuneExperimentConfig)

    def train(self, manifest: Path, budget: FinetuneBudget, on_eval: EvalCallback, resume: bool,
              progress: bool = True) -> TrainingReport:
        cfg = self.experiment_config(manifest, budget)
        if not progress:
            cfg.train.progress_bar = False
        train_dir = self.exp_dir / "train"
        resuming = resume and ckpt.latest_valid_checkpoint(train_dir / "checkpoints") is not None
        trainer = VITSFinetuneTrainer(cfg, train_dir, resume=resuming, cpu=True)
        if not resuming:  # the base voice, with the posterior encoder prepare_base gave it
            trainer.unwrap("generator").load_state_dict(self.model.state_dict(), strict=True)
        trainer.on_eval, trainer.eval_every = on_eval, budget.eval_every
        self.trainer = trainer
        trainer.train()
        trainer.keep_average()  # after its last save: a resumed run continues from the trained weights
        return TrainingReport(trainer.step, trainer.cpu_minutes_used(), stop_cause(trainer, budget),
                              {"exit_code": trainer.interrupted, "skipped_items": len(trainer.train_set.skipped),
                               "precision": trainer.accelerator.mixed_precision})

    # ------------------------------------------------------------------ output
    def save_voice(self, out_dir: Path, tempo: float) -> Path:
        model = VITS.from_config(self.base_cfg.model)  # a copy (deepcopy fails on weight-normed modules)
        model.load_state_dict(self.current_model().state_dict())
        model.eval()
        fold_length_scale(model, tempo)
        step = self.trainer.step if self.trainer is not None else 0
        meta = {"finetune": {"base": str(self.src), "step": step, "length_scale_folded": round(tempo, 4)}}
        if self.blended is not None:
            step = self.blended_step
            meta["finetune"].update(step=step, decoder_blend=self.blend_weight)
        voice_json = self.src.parent.parent / "piper_voice.onnx.json"
        if self.voice_rate != self.sample_rate:
            meta["finetune"]["playback_ratio"] = round(self.voice_rate / self.sample_rate, 4)
        return write_voice_dir(Path(out_dir), model, self.voice_config(), step, meta,
                               {"piper_voice.onnx.json": voice_json})

    def blend_with_base(self, voice_dir: Path, weight: float) -> bool:
        """The decoder moves (its effective weights, :func:`modules.weight_norm.move_towards`); the text
        encoder, flow and posterior encoder stay as saved: swapped back one at a time into reader 367's voice,
        the decoder held the haze (DNSMOS 1.97 -> 3.16 with the base's) and the flow part of the likeness."""
        src = ckpt.resolve_checkpoint_dir(voice_dir)
        saved = ckpt.read_meta(src).get("finetune", {})
        if "decoder_blend" in saved:  # blending it again would compound the two weights
            raise FinetuneError(f"{voice_dir} is already blended (weight {saved['decoder_blend']}); blend the "
                                "voice it came from (EXP/voice_as_trained) instead")
        model = VITS.from_config(self.base_cfg.model)
        ckpt.load_state_dict_strict(model, ckpt.load_model_weights(src, "generator"), str(src))
        # the saved duration predictor has the reader's tempo folded in; the base's is the one it was trained
        # from (the predictor is never trained), and save_voice folds the tempo again
        model.dp.load_state_dict(self.model.dp.state_dict())
        move_towards(model.dec, self.model.dec, weight)
        self.blended, self.blend_weight = model.eval(), weight
        self.blended_step = int(saved.get("step", 0))
        return True

    def export(self, voice_dir: Path, onnx_path: Path) -> List[Path]:
        from models.tts.vits.onnx_export import export_piper
        import json

        src = ckpt.resolve_checkpoint_dir(voice_dir)
        cfg = validate(ckpt.read_config(src), VITSExperimentConfig)
        model = VITS.from_config(cfg.model)
        model.load_state_dict(ckpt.load_model_weights(src, "generator"), strict=True)
        voice_json = Path(voice_dir) / "piper_voice.onnx.json"
        source = json.loads(voice_json.read_text(encoding="utf-8")) if voice_json.is_file() else None
        out = export_piper(model.eval(), cfg, onnx_path, dataset=Path(onnx_path).stem, source=source)
        return [out, Path(str(out) + ".json")]
