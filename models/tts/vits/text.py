"""The text front end a VITS experiment's data section asks for (official 178 symbols, or a Piper voice's ids)."""

from __future__ import annotations

from typing import Union

from models.tts.vits.config import VITSDataConfig
from processors.text.frontend import TextFrontend
from processors.text.piper_phonemes import PiperPhonemeFrontend

Frontend = Union[TextFrontend, PiperPhonemeFrontend]


def text_frontend(data: VITSDataConfig) -> Frontend:
    """``data.text_frontend``: ``echelon`` -> :class:`TextFrontend`, ``piper`` -> :class:`PiperPhonemeFrontend`;
    both return ``{"cleaned", "ids", "ids_blank"}`` and the model reads ``ids_blank``."""
    if data.text_frontend == "piper":
        return PiperPhonemeFrontend(data.phoneme_id_map, data.espeak_voice)
    return TextFrontend(add_blank=data.add_blank)
