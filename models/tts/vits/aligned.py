"""VITS text-to-speech with the duration predictor's alignment: ``get("pipeline", "vits_aligned")``.

Implements :class:`models.base.tasks.TextToSpeech` for any Echelon VITS checkpoint (trained, or converted from a
Piper voice by ``echelon-convert-piper``) and adds :meth:`AlignedVITS.synthesize_aligned`, which also returns,
for every input symbol, how many latent frames the duration predictor gave it (``w_ceil``; one frame =
``hop_length`` samples).  :mod:`models.tts.vits.piper_corpus` uses it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch

from models.base.tasks import Audio, AudioInput, Capabilities, TextToSpeech
from models.tts.vits.inference import VITSSynthesizer
from utils.registry import register
from utils.rng import seeded


@dataclass
class AlignedUtterance:
    """One synthesised text: ``audio``; ``phonemes`` the front end's phoneme string; ``ids`` the model input;
    ``frames[i]`` the latent frames spoken for ``ids[i]`` (sum = waveform length / ``hop_length``)."""

    audio: Audio
    phonemes: str
    ids: List[int]
    frames: List[int]
    hop_length: int


@register("pipeline", "vits_aligned")
class AlignedVITS(TextToSpeech):
    """A VITS checkpoint as a text-to-speech pipeline that can also report per-symbol durations."""

    def __init__(self, ckpt_dir: Union[str, Path], device: str = "cpu",
                 noise_scale: float = 0.667, noise_scale_w: float = 0.8, length_scale: float = 1.0) -> None:
        self.synth = VITSSynthesizer.from_echelon(ckpt_dir, device=device)
        self.sample_rate = self.synth.sample_rate
        self.hop_length = self.synth.model.hop_length
        self.noise_scale, self.noise_scale_w, self.length_scale = noise_scale, noise_scale_w, length_scale

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}), speakers=tuple(self.synth.data.speakers))

    def synthesize(self, texts: Sequence[str], prompts: Optional[Sequence[AudioInput]] = None,
                   prompt_texts: Optional[Sequence[str]] = None, speakers: Optional[Sequence[Union[int, str]]] = None,
                   seed: Optional[int] = None) -> List[Audio]:
        if prompts is not None:
            raise ValueError("VITS takes no audio prompt; choose a speaker instead")
        return [u.audio for u in self.synthesize_aligned(texts, speakers, seed)]

    @torch.no_grad()
    def synthesize_aligned(self, texts: Sequence[str], speakers: Optional[Sequence[Union[int, str]]] = None,
                           seed: Optional[int] = None) -> List[AlignedUtterance]:
        """One :class:`AlignedUtterance` per text (each decoded alone); a bad text raises naming it."""
        if speakers is not None and len(speakers) != len(texts):
            raise ValueError(f"{len(speakers)} speakers for {len(texts)} texts")
        out: List[AlignedUtterance] = []
        for index, text in enumerate(texts):
            front = self.synth.frontend(text)
            ids = list(front["ids_blank"])
            sid = self.synth.speaker_id(speakers[index] if speakers is not None else None)
            x = torch.tensor([ids], device=self.synth.device)
            model = self.synth.model
            # reproducible sampling, each text its own draw (unseeded: the caller's generator, moving on)
            with seeded(seed + index, x.device) if seed is not None else contextlib.nullcontext():
                result = model.infer(x, torch.tensor([len(ids)], device=x.device), sid=sid,
                                     noise_scale=self.noise_scale, noise_scale_w=self.noise_scale_w,
                                     length_scale=self.length_scale)
            wav = result["wav"][0, 0, : int(result["lengths"][0])].float().cpu().numpy()
            frames = [int(f) for f in result["w_ceil"][0, 0].round().long().tolist()]
            out.append(AlignedUtterance(Audio(wav, self.sample_rate), str(front["cleaned"]), ids, frames,
                                        self.hop_length))
        return out
