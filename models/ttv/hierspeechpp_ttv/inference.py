"""Loading TTV checkpoints and the registered zero-shot TTS pipeline (``bins/infer.py``).

Python::

    wav = tts("Some text. More text.", "prompt.wav", ttv="exp/ttv", synthesizer="exp/hierspeechpp",
              output_rate=48000)                     # Echelon dirs or official .pth files (+ config.json)
    pipeline = load_tts("exp/ttv", "exp/hierspeechpp")  # reusable: pipeline.synthesize(text, wav16k, TTSOptions())

CLI::

    python -m bins.infer --ckpt_dir exp/ttv --synthesizer exp/hierspeechpp --prompt p.wav \\
        --text "First text." "Second text." --output_dir out --output_rate 48000

Official checkpoints are plain state-dict ``.pth`` files with a ``config.json`` next to them (the layout of
``logs/ttv_libritts_v1/``); they load strictly. They are not bundled (not reachable offline): pass their path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import List, Sequence

import numpy as np

import torch

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.tts.hierspeechpp.checkpoint import load_official_checkpoint
from models.tts.hierspeechpp.inference import VoiceConverter
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.ttv.hierspeechpp_ttv.config import TTVConfig
from models.ttv.hierspeechpp_ttv.model import TextToVec
from models.ttv.hierspeechpp_ttv.tts import TTSOptions, ZeroShotTTS
from processors.audio import AudioError, load_audio, save_audio
from processors.text.frontend import TextError
from utils.config import validate
from utils.registry import register


def load_ttv(path: str | Path) -> TextToVec:
    """Official ``.pth`` (+ ``config.json`` beside it) or an Echelon checkpoint/experiment directory."""
    path = Path(path)
    if path.is_file():
        config = path.parent / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"official TTV checkpoint {path} needs its config.json alongside")
        model_cfg = json.loads(config.read_text(encoding="utf-8"))["model"]
        model = TextToVec(**model_cfg)
        state = ckpt.load_torch_state(path)
        state = state["model"] if isinstance(state, dict) and isinstance(state.get("model"), dict) else state
        model.load_state_dict(state, strict=True)
        return model.eval()
    cdir = ckpt.resolve_checkpoint_dir(path)
    raw = ckpt.read_config(cdir)
    model = TextToVec.from_config(validate(raw.get("model", {}), TTVConfig, "model"))
    model.load_state_dict(ckpt.load_model_weights(cdir, "ttv"), strict=True)
    return model.eval()


def load_synthesizer(path: str | Path) -> HierSpeechPPSynthesizer:
    """Official ``.pth`` (+ ``config.json`` beside it) or an Echelon synthesizer directory (no SSL model loaded)."""
    path = Path(path)
    if path.is_file():
        return load_official_checkpoint(path)
    return VoiceConverter.from_echelon(path, ssl=torch.nn.Identity()).model


def load_tts(ttv: str | Path, synthesizer: str | Path, device: str = "cpu") -> ZeroShotTTS:
    """Both models from official ``.pth`` files or Echelon directories; SpeechSR = bundled release."""
    return ZeroShotTTS(load_ttv(ttv), load_synthesizer(synthesizer), device=device)


def tts(text: str | Sequence[str], prompt: str | Path | np.ndarray, ttv: str | Path | TextToVec,
        synthesizer: str | Path | HierSpeechPPSynthesizer, output_rate: int = 16000, device: str = "cpu",
        **options) -> np.ndarray | List[np.ndarray]:
    """One-call TTS: text (or a list of texts) in the voice of ``prompt`` (a wav path at any rate, or a 16 kHz
    array) -> float32 waveform(s) at ``output_rate``; ``options`` are :class:`TTSOptions` fields."""
    if isinstance(ttv, TextToVec) and isinstance(synthesizer, HierSpeechPPSynthesizer):
        pipeline = ZeroShotTTS(ttv, synthesizer, device=device)
    elif isinstance(ttv, TextToVec) or isinstance(synthesizer, HierSpeechPPSynthesizer):
        raise TypeError("give both ttv and synthesizer as models, or both as checkpoint paths")
    else:
        pipeline = load_tts(ttv, synthesizer, device)
    wav = load_audio(prompt, 16000) if isinstance(prompt, (str, Path)) else np.asarray(prompt, dtype=np.float32)
    opts = TTSOptions(output_rate=output_rate, **options)
    if isinstance(text, str):
        return pipeline.synthesize(text, wav, opts)
    return pipeline.synthesize_many(list(text), wav, opts)


def options_from_args(args: argparse.Namespace) -> TTSOptions:
    return TTSOptions(noise_scale_ttv=args.noise_scale_ttv, noise_scale_w=args.noise_scale_w,
                      length_scale=args.length_scale, noise_scale_vc=args.noise_scale_vc,
                      denoise_ratio=args.denoise_ratio, output_rate=args.output_rate, scale_norm=args.scale_norm,
                      pause_seconds=args.pause_seconds, seed=args.seed)


@register("inference", "hierspeechpp_ttv")
class HierSpeechTTSInference(BaseInference):
    """``--ckpt_dir`` = the TTV (Echelon dir or official .pth); ``--synthesizer`` = the synthesizer."""

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu") -> "HierSpeechTTSInference":
        if ckpt_dir is None:
            raise ValueError("give the TTV checkpoint with --ckpt_dir (Echelon dir or official .pth)")
        ttv = load_ttv(ckpt_dir)
        return cls(ttv.config, {"ttv": ttv}, device)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--synthesizer", required=True, help="synthesizer: Echelon dir or official .pth")
        parser.add_argument("--prompt", required=True, help="voice/prosody prompt wav (any rate)")
        parser.add_argument("--text", nargs="*", default=[], help="texts (one output file each)")
        parser.add_argument("--text_file", help="UTF-8 file, one text per line")
        parser.add_argument("--output_dir", required=True)
        parser.add_argument("--output_rate", type=int, choices=(16000, 24000, 48000), default=16000)
        parser.add_argument("--noise_scale_ttv", type=float, default=0.333)
        parser.add_argument("--noise_scale_w", type=float, default=1.0)
        parser.add_argument("--length_scale", type=float, default=1.0)
        parser.add_argument("--noise_scale_vc", type=float, default=0.333)
        parser.add_argument("--denoise_ratio", type=float, default=0.0)
        parser.add_argument("--scale_norm", choices=("max", "prompt", "none"), default="max")
        parser.add_argument("--pause_seconds", type=float, default=0.3)
        parser.add_argument("--seed", type=int, default=1111)

    def run(self, args: argparse.Namespace) -> List[Path]:
        texts = list(args.text)
        if args.text_file:
            texts += [line for line in Path(args.text_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise SystemExit("error: nothing to say (give --text or --text_file)")
        tts = ZeroShotTTS(self.models["ttv"], load_synthesizer(args.synthesizer), device=self.device)
        try:
            prompt = load_audio(args.prompt, 16000)
        except (AudioError, FileNotFoundError) as err:
            raise SystemExit(f"error: prompt {args.prompt}: {err}") from err
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        opts = options_from_args(args)
        written, bad = [], []
        for k, text in enumerate(texts):
            try:
                wav = tts.synthesize(text, prompt, opts, text_index=k)
            except TextError as err:
                bad.append(f"{k}\t{text[:80]!r}\t{err}")
                continue
            written.append(save_audio(out_dir / f"tts_{k:04d}.wav", wav, opts.output_rate))
        if bad:
            (out_dir / "bad_items.tsv").write_text("\n".join(bad) + "\n", encoding="utf-8")
        return written
