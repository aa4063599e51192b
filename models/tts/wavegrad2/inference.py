"""WaveGrad 2 inference: text -> speech with any refinement schedule.

Python (task-level API, :class:`models.base.tasks.TextToSpeech`)::

    tts = WaveGrad2TTS.from_checkpoint("exp/wavegrad2", steps=6)      # or schedule="linear_1000" / "best.json"
    out = tts.synthesize(["Hello there."], seed=1)                     # [Audio(waveform, 24000)]

CLI (``bins/infer.py``)::

    echelon-infer --ckpt_dir exp/wavegrad2 --text "Hello." --output_dir out --set infer.steps=50
    echelon-infer --ckpt_dir exp/wavegrad2 --text_file lines.txt --schedule exp/wavegrad2/schedule_6.json
    echelon-infer --ckpt_dir exp/wavegrad2 --jobs jobs.jsonl --output_dir out     # {"id", "text", "speaker"?}

The schedule is, by priority: ``--steps``/``infer.steps`` (a schedule of that many steps ending at the training
schedule's noise floor, :func:`modules.diffusion.schedule_for_steps`; 1000 = the training schedule), else
``--schedule``/``infer.schedule`` (preset name or a schedule file written by
``python -m models.tts.wavegrad2.schedule_search``).
Texts that fail are skipped and listed in ``<output_dir>/bad_items.tsv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.base.tasks import Audio, AudioInput, Capabilities, TextToSpeech
from models.tts.wavegrad2.checkpoint import load_state_dict_strict
from models.tts.wavegrad2.config import WaveGrad2ExperimentConfig, WaveGrad2InferConfig
from models.tts.wavegrad2.dataset import speaker_index
from models.tts.wavegrad2.model import WaveGrad2
from modules.diffusion import NoiseSchedule, resolve_schedule, schedule_for_steps
from processors.audio import save_audio
from processors.text.frontend import TextError, TextFrontend
from utils.config import apply_overrides, to_dict, validate
from utils.io import atomic_write_text
from utils.registry import register

log = logging.getLogger(__name__)


def inference_schedule(model: WaveGrad2, infer: WaveGrad2InferConfig) -> NoiseSchedule:
    """The schedule ``infer`` asks for (see the module doc)."""
    if infer.steps is not None:
        if infer.steps < 1:
            raise ValueError(f"infer.steps must be >= 1, got {infer.steps}")
        train = model.train_schedule
        if infer.steps == train.steps:
            return train
        return NoiseSchedule.from_betas(schedule_for_steps(infer.steps, float(train.noise_levels[-1])))
    return resolve_schedule(infer.schedule)


class WaveGrad2TTS(TextToSpeech):
    """A loaded model with its front end, speaker table and sampling settings."""

    def __init__(self, model: WaveGrad2, cfg: WaveGrad2ExperimentConfig, device: Union[str, torch.device] = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.sample_rate = cfg.model.sampling_rate
        self.frontend = TextFrontend(add_blank=cfg.data.add_blank)
        self.schedule = inference_schedule(self.model, cfg.infer)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str | Path, device: str = "cpu", overrides: Sequence[str] = (),
                        steps: Optional[int] = None, schedule: Optional[str] = None) -> "WaveGrad2TTS":
        """Echelon checkpoint/experiment dir; ``overrides`` like ``infer.steps=50`` change the saved config."""
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        raw = apply_overrides(ckpt.read_config(path), list(overrides))
        cfg = validate(raw, WaveGrad2ExperimentConfig)
        if steps is not None or schedule is not None:
            changes = {"steps": steps} if steps is not None else {"schedule": schedule, "steps": None}
            cfg.infer = dataclasses.replace(cfg.infer, **changes)
        model = WaveGrad2.from_config(cfg.model)
        load_state_dict_strict(model, ckpt.load_model_weights(path, "model"), str(path))
        return cls(model, cfg, device)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}), speakers=tuple(self.cfg.data.speakers))

    def speaker_id(self, speaker: Union[int, str, None]) -> Optional[torch.Tensor]:
        """Name (``data.speakers``) or id -> ``(1,)``; None for a single-speaker model."""
        n = self.cfg.model.n_speakers
        if n <= 0:
            if speaker not in (None, "", 0, "0"):
                raise ValueError(f"this model has a single speaker; got speaker {speaker!r}")
            return None
        if speaker is None or speaker == "":
            raise ValueError(f"this model has {n} speakers: give a speaker (name or id)")
        return torch.tensor([speaker_index(str(speaker), self.cfg.data.speakers, n)], device=self.device)

    @torch.no_grad()
    def synthesize(
        self,
        texts: Sequence[str],
        prompts: Optional[Sequence[AudioInput]] = None,
        prompt_texts: Optional[Sequence[str]] = None,
        speakers: Optional[Sequence[Union[int, str]]] = None,
        seed: Optional[int] = None,
    ) -> List[Audio]:
        """One waveform per text; ``seed`` (default ``infer.seed``) fixes every draw. Prompts are not used."""
        if prompts:
            raise ValueError("WaveGrad 2 has no zero-shot prompt; use a speaker of a multi-speaker model")
        generator = torch.Generator().manual_seed(self.cfg.infer.seed if seed is None else int(seed))
        outputs = []
        for index, text in enumerate(texts):
            ids = torch.tensor([self.frontend(text)["ids_blank"]], dtype=torch.long, device=self.device)
            sid = self.speaker_id(speakers[index] if speakers else None)
            out = self.model.infer(ids, torch.tensor([ids.size(1)], device=self.device), self.schedule, speakers=sid,
                                   generator=generator, clip_denoised=self.cfg.infer.clip_denoised,
                                   pace=self.cfg.infer.pace)
            outputs.append(Audio(out["wav"][0, : int(out["lengths"][0])].float().cpu().numpy(), self.sample_rate))
        return outputs


def _text_items(args: argparse.Namespace) -> List[Tuple[str, str, Optional[str]]]:
    items = [(f"text_{i:03d}", t, args.speaker) for i, t in enumerate(args.text or [])]
    if args.text_file:
        for number, line in enumerate(Path(args.text_file).read_text(encoding="utf-8").splitlines()):
            if line.strip():
                uid, sep, text = line.partition("|")
                items.append((uid.strip(), text.strip(), args.speaker) if sep else
                             (f"line_{number:04d}", line.strip(), args.speaker))
    if args.jobs:
        for number, line in enumerate(Path(args.jobs).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            job = json.loads(line)
            if "id" not in job or "text" not in job:
                raise ValueError(f"{args.jobs}:{number}: a job needs 'id' and 'text'")
            items.append((str(job["id"]), job["text"], job.get("speaker", args.speaker)))
    return items


@register("inference", "wavegrad2")
class WaveGrad2Inference(BaseInference):
    """``bins/infer.py`` entry."""

    config_class = WaveGrad2ExperimentConfig

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu", overrides: Sequence[str] = ()) -> "WaveGrad2Inference":
        if ckpt_dir is None:
            raise ValueError("wavegrad2 inference: give --ckpt_dir (Echelon checkpoint or experiment dir)")
        tts = WaveGrad2TTS.from_checkpoint(ckpt_dir, device, overrides)
        pipeline = cls(tts.cfg, {"model": tts.model}, device)
        pipeline.tts = tts
        return pipeline

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--text", action="append", help="text to speak (repeatable)")
        parser.add_argument("--text_file", help="one utterance per line, 'utt_id|text' or plain text")
        parser.add_argument("--jobs", help='JSONL of {"id", "text", "speaker"?} jobs')
        parser.add_argument("--speaker", help="speaker name (data.speakers) or id for multi-speaker models")
        parser.add_argument("--output_dir", default="wavegrad2_out")
        parser.add_argument("--steps", type=int, help="refinement steps (overrides infer.steps / the schedule)")
        parser.add_argument("--schedule", help="preset name or schedule file (overrides infer.schedule)")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override the checkpoint's config, e.g. infer.steps=50 or infer.pace=1.1")
        parser.add_argument("--seed", type=int, help="sampling seed (default infer.seed)")

    def run(self, args: argparse.Namespace) -> List[Path]:
        tts: WaveGrad2TTS = self.tts
        if args.set or args.steps is not None or args.schedule is not None:
            wrong = [item for item in args.set if not item.startswith("infer.")]
            if wrong:
                raise SystemExit(f"error: --set changes inference settings only (infer.KEY=VALUE), got {wrong[0]!r}")
            raw = apply_overrides(to_dict(tts.cfg), list(args.set))
            cfg = validate(raw, WaveGrad2ExperimentConfig)
            if args.steps is not None:
                cfg.infer = dataclasses.replace(cfg.infer, steps=args.steps)
            elif args.schedule is not None:
                cfg.infer = dataclasses.replace(cfg.infer, schedule=args.schedule, steps=None)
            tts = WaveGrad2TTS(tts.model, cfg, self.device)
        items = _text_items(args)
        if not items:
            raise SystemExit("error: nothing to do (give --text, --text_file or --jobs)")
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        log.info("wavegrad2: %d-step schedule", tts.schedule.steps)
        written, bad = [], []
        for uid, text, speaker in items:
            try:
                audio = tts.synthesize([text], speakers=[speaker] if speaker is not None else None, seed=args.seed)[0]
            except (TextError, ValueError) as err:
                bad.append((uid, str(err)))
                continue
            written.append(save_audio(out_dir / f"{uid}.wav", audio.waveform, audio.sample_rate))
        if bad:
            atomic_write_text(out_dir / "bad_items.tsv", "".join(f"{u}\t{r}\n" for u, r in bad))
            log.warning("%d input(s) failed, listed in %s", len(bad), out_dir / "bad_items.tsv")
        return written
