"""Reference systems the benchmark can always run: espeak-ng formant synthesis (a lower bound for TTS).

Registered as a pipeline like any model family (``{pipeline: "espeak_ng", infer: {voice: "en-us"}}``); it
needs only the ``espeak-ng`` program (Debian package ``espeak-ng``, installed by ``make install``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
import soundfile as sf

from models.base.infer_settings import InferSettings
from models.base.pipeline import PipelineMixin
from models.base.tasks import Audio, AudioInput, Capabilities, TextToSpeech
from utils.registry import register


@dataclass
class EspeakSettings(InferSettings):
    voice: str = "en-us"
    rate: int = 160  # words per minute at length_scale 1
    length_scale: float = 1.0  # the shared speaking-rate setting (> 1 slower): espeak-ng speaks rate / length_scale
    pitch: int = 50  # 0-99


@register("pipeline", "espeak_ng")
class EspeakNG(TextToSpeech, PipelineMixin):
    """espeak-ng as a TTS system: no prompt, one voice, output at espeak-ng's 22.05 kHz."""

    task = "tts"
    settings_class = EspeakSettings
    components: Mapping[str, bool] = {}
    sample_rate = 22050

    def __init__(self, settings: EspeakSettings) -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
        self.settings = settings

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: EspeakSettings,
                        device: str = "cpu") -> "EspeakNG":
        return cls(settings)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}))

    def _speak(self, text: str) -> Audio:
        s = self.settings
        words_per_minute = str(round(s.rate / s.length_scale))
        command = [self.binary, "-v", s.voice, "-s", words_per_minute, "-p", str(s.pitch), "--stdout", text]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0 or not result.stdout:
            raise RuntimeError(f"espeak-ng failed on {text[:40]!r}: {result.stderr.decode(errors='replace').strip()}")
        wav, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
        return Audio(np.asarray(wav).reshape(-1), rate)

    def synthesize(self, texts: Sequence[str], prompts: Optional[Sequence[AudioInput]] = None,
                   prompt_texts: Optional[Sequence[str]] = None, speakers: Optional[Sequence[Union[int, str]]] = None,
                   seed: Optional[int] = None) -> List[Audio]:
        if prompts is not None:
            raise ValueError("espeak_ng takes no audio prompt")
        return [self._speak(text) for text in texts]
