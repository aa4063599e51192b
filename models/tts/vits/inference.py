"""VITS inference: text -> speech (with a speaker for multi-speaker models) and voice conversion between speakers.

Python API::

    synth = VITSSynthesizer.from_echelon("exp/vits_vctk")                 # Echelon checkpoint / experiment dir
    synth = VITSSynthesizer.from_official("G_800000.pth", "config.json")  # jaywalnut310/vits files
    wavs = synth.synthesize(["Hello there."], speaker="p225")             # list of float32 arrays
    wav = synth.convert("source.wav", src_speaker="p225", tgt_speaker="p226")

CLI (``bins/infer.py``)::

    echelon-infer --ckpt_dir exp/vits --text "Hello." --speaker p225 --output_dir out
    echelon-infer --ckpt_dir exp/vits --text_file lines.txt --output_dir out      # "utt_id|text" or plain lines
    echelon-infer --ckpt_dir exp/vits --vc_source a.wav --vc_src_speaker p225 --vc_tgt_speaker p226 --output_dir out
    echelon-infer --model_type vits --ckpt_dir pretrained_ljs.pth --text "Hi."   # official file + config.json beside it
    echelon-infer --ckpt_dir exp/vits --jobs jobs.jsonl --output_dir out     # per-line jobs (recipes)

A jobs file has one JSON object per line: ``{"id", "text", "speaker"?}`` is a TTS job; ``{"id", "path",
"source_speaker", "speaker"}`` a voice-conversion job (source file, its speaker, target speaker). Outputs are
``<output_dir>/<id>.wav``.

Inputs that fail (bad text, unreadable audio) are skipped and listed in ``<output_dir>/bad_items.tsv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.tts.hierspeechpp.checkpoint import load_state_dict_strict
from models.tts.vits.checkpoint import load_official_generator
from models.tts.vits.config import VITSConfig, VITSDataConfig, VITSExperimentConfig, from_official_config
from models.tts.vits.model import VITS
from models.tts.vits.text import text_frontend
from processors.audio import AudioError, load_audio, save_audio
from processors.spectrogram import VitsLinearSpectrogram
from processors.text.frontend import TextError
from utils.config import validate
from utils.registry import register

log = logging.getLogger(__name__)
Speaker = Union[int, str, None]


class VITSSynthesizer:
    """A loaded VITS model with its front end (text ids, linear spectrogram) and speaker table."""

    def __init__(self, model: VITS, data: VITSDataConfig, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).prepare_for_inference()
        self.data = data
        self.sample_rate = data.sampling_rate
        self.frontend = text_frontend(data)
        self.spectrogram = VitsLinearSpectrogram(data.filter_length, data.hop_length, data.win_length).to(self.device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_echelon(cls, ckpt_dir: str | Path, device: str = "cpu") -> "VITSSynthesizer":
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        cfg = validate(ckpt.read_config(path), VITSExperimentConfig)
        model = VITS.from_config(cfg.model)
        load_state_dict_strict(model, ckpt.load_model_weights(path, "generator"), str(path))
        return cls(model, cfg.data, device)

    @classmethod
    def from_official(cls, pth: str | Path, config_json: str | Path | None = None, device: str = "cpu") -> "VITSSynthesizer":
        """Official ``G_*.pth`` + its ``config.json`` (default: next to the checkpoint)."""
        config_json = Path(config_json) if config_json is not None else Path(pth).parent / "config.json"
        if not config_json.is_file():
            raise FileNotFoundError(f"official VITS config not found: {config_json} (pass it explicitly)")
        official = json.loads(config_json.read_text(encoding="utf-8"))
        model_cfg: VITSConfig = from_official_config(official)
        names = {f.name for f in dataclasses.fields(VITSDataConfig)}
        data = VITSDataConfig(**{k: v for k, v in official["data"].items() if k in names and k != "speakers"})
        return cls(load_official_generator(pth, model_cfg), data, device)

    # ------------------------------------------------------------------ helpers
    def speaker_id(self, speaker: Speaker) -> Optional[torch.Tensor]:
        """Name (from ``data.speakers``) or integer id -> ``(1,)`` tensor; None for single-speaker models."""
        n = self.model.n_speakers
        if n <= 1:
            if speaker not in (None, "", 0, "0"):
                raise ValueError(f"this model has a single speaker; got speaker {speaker!r}")
            return None
        if speaker is None or speaker == "":
            raise ValueError(f"this model has {n} speakers: give a speaker (name or id)")
        if isinstance(speaker, str) and speaker in self.data.speakers:
            sid = self.data.speakers.index(speaker)
        else:
            try:
                sid = int(speaker)
            except ValueError as err:
                raise ValueError(f"unknown speaker {speaker!r}; known: {self.data.speakers[:10]}") from err
        if not 0 <= sid < n:
            raise ValueError(f"speaker id {sid} outside [0, {n})")
        return torch.tensor([sid], device=self.device)

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def synthesize(
        self,
        texts: Sequence[str],
        speaker: Speaker = None,
        noise_scale: float = 0.667,
        noise_scale_w: float = 0.8,
        length_scale: float = 1.0,
        batch_size: int = 8,
    ) -> List[np.ndarray]:
        """Texts -> float32 waveforms at ``self.sample_rate`` (one per text, batched internally)."""
        sid = self.speaker_id(speaker)
        ids = [torch.tensor(self.frontend(t)["ids_blank"], dtype=torch.long) for t in texts]
        wavs: List[np.ndarray] = []
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            lengths = torch.tensor([len(c) for c in chunk], device=self.device)
            x = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long, device=self.device)
            for b, c in enumerate(chunk):
                x[b, : len(c)] = c
            out = self.model.infer(x, lengths, sid=None if sid is None else sid.expand(len(chunk)),
                                   noise_scale=noise_scale, length_scale=length_scale, noise_scale_w=noise_scale_w,
                                   decode_per_item=True)
            for b in range(len(chunk)):
                wavs.append(out["wav"][b, 0, : int(out["lengths"][b])].float().cpu().numpy())
        return wavs

    @torch.no_grad()
    def convert(self, source: Union[str, Path, np.ndarray], src_speaker: Speaker, tgt_speaker: Speaker,
                noise_scale: float = 1.0) -> np.ndarray:
        """Voice conversion of one utterance (file path or float waveform at ``sample_rate``)."""
        wav = load_audio(source, self.sample_rate) if isinstance(source, (str, Path)) else np.asarray(source, np.float32)
        min_len = self.data.filter_length
        if wav.shape[-1] < min_len:
            raise AudioError(f"source is shorter than one analysis window ({wav.shape[-1]} < {min_len} samples)")
        spec = self.spectrogram(torch.from_numpy(wav).float().to(self.device).unsqueeze(0))
        src, tgt = self.speaker_id(src_speaker), self.speaker_id(tgt_speaker)
        out = self.model.voice_conversion(spec, torch.tensor([spec.size(-1)], device=self.device), src, tgt,
                                          noise_scale=noise_scale)
        return out["wav"][0, 0].float().cpu().numpy()


def read_jobs(path: str | Path) -> List[dict]:
    """JSONL jobs (see the module doc); each needs an ``id`` and either ``text`` or ``path`` + ``source_speaker``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"jobs file not found: {path}")
    jobs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid JSON: {err}") from err
        if "id" not in job or not ("text" in job or ("path" in job and "source_speaker" in job)):
            raise ValueError(f"{path}:{number}: a job needs 'id' and 'text' (TTS) or 'path' + 'source_speaker' (VC)")
        if "path" in job and not Path(job["path"]).is_absolute():
            job["path"] = str(path.parent / job["path"])
        jobs.append(job)
    return jobs


def _text_items(args: argparse.Namespace) -> List[Tuple[str, str]]:
    items = [(f"text_{i:03d}", t) for i, t in enumerate(args.text or [])]
    if args.text_file:
        for number, line in enumerate(Path(args.text_file).read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            uid, sep, text = line.partition("|")
            items.append((uid.strip(), text.strip()) if sep else (f"line_{number:04d}", line.strip()))
    return items


@register("inference", "vits")
class VITSInference(BaseInference):
    """``bins/infer.py`` entry: TTS and voice conversion from an Echelon checkpoint or an official ``.pth``."""

    config_class = VITSExperimentConfig

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu") -> "VITSInference":
        if ckpt_dir is None:
            raise ValueError("vits inference: give --ckpt_dir (Echelon checkpoint/experiment dir or official .pth)")
        path = Path(ckpt_dir)
        synth = VITSSynthesizer.from_official(path, device=device) if path.suffix == ".pth" else \
            VITSSynthesizer.from_echelon(path, device=device)
        pipeline = cls(synth.model.config, {"generator": synth.model}, device)
        pipeline.synth = synth
        return pipeline

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--text", action="append", help="text to speak (repeatable)")
        parser.add_argument("--text_file", help="one utterance per line, 'utt_id|text' or plain text")
        parser.add_argument("--speaker", help="speaker name (data.speakers) or id for multi-speaker models")
        parser.add_argument("--jobs", help="JSONL of TTS / VC jobs (see models/tts/vits/inference.py)")
        parser.add_argument("--vc_source", action="append", help="wav to convert (repeatable)")
        parser.add_argument("--vc_src_speaker", help="speaker of the --vc_source files")
        parser.add_argument("--vc_tgt_speaker", help="target speaker of the conversion")
        parser.add_argument("--output_dir", default="vits_out")
        parser.add_argument("--noise_scale", type=float, default=0.667)
        parser.add_argument("--noise_scale_w", type=float, default=0.8)
        parser.add_argument("--length_scale", type=float, default=1.0)
        parser.add_argument("--seed", type=int, default=1234)

    def run(self, args: argparse.Namespace) -> List[Path]:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(args.seed)
        synth: VITSSynthesizer = self.synth
        written: List[Path] = []
        bad: List[Tuple[str, str]] = []
        texts = [(uid, text, args.speaker) for uid, text in _text_items(args)]
        vc_jobs = [(Path(s).stem + f"_to_{args.vc_tgt_speaker if args.vc_tgt_speaker is not None else 'tgt'}", s,
                    args.vc_src_speaker, args.vc_tgt_speaker) for s in args.vc_source or []]
        for job in read_jobs(args.jobs) if args.jobs else []:
            if "source_speaker" in job:
                vc_jobs.append((str(job["id"]), job["path"], job["source_speaker"], job.get("speaker")))
            else:
                texts.append((str(job["id"]), job["text"], job.get("speaker", args.speaker)))
        if not texts and not vc_jobs:
            raise SystemExit("error: nothing to do (give --text, --text_file, --vc_source or --jobs)")
        for uid, text, speaker in texts:
            try:
                wav = synth.synthesize([text], speaker, args.noise_scale, args.noise_scale_w, args.length_scale)[0]
            except (TextError, ValueError) as err:
                bad.append((uid, str(err)))
                continue
            written.append(save_audio(out_dir / f"{uid}.wav", wav, synth.sample_rate))
        for uid, source, src, tgt in vc_jobs:
            try:
                wav = synth.convert(source, src, tgt, args.noise_scale)
            except (AudioError, ValueError) as err:
                bad.append((uid, str(err)))
                continue
            written.append(save_audio(out_dir / f"{uid}.wav", wav, synth.sample_rate))
        if bad:
            (out_dir / "bad_items.tsv").write_text("".join(f"{u}\t{r}\n" for u, r in bad), encoding="utf-8")
            log.warning("%d input(s) failed, listed in %s", len(bad), out_dir / "bad_items.tsv")
        return written
