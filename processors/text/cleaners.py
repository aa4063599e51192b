"""English text cleaning before phonemisation (VITS/HierSpeech++ ``english_cleaners2`` minus the phonemiser).

Steps: ASCII folding with Unidecode (accents removed, curly quotes -> straight, em dash -> "--"), lower case,
expansion of the 18 abbreviations of the released cleaners (``mrs.`` -> ``misess``, ``dr.`` -> ``doctor``, ...).
Whitespace is collapsed *after* phonemisation (:func:`collapse_whitespace`), in the released order.  Numbers, times, money and percentages are *not* expanded here: espeak-ng reads them,
as the released models were trained.
"""

from __future__ import annotations

import re
from typing import List, Tuple

from unidecode import unidecode

_ABBREVIATIONS: List[Tuple[re.Pattern, str]] = [
    (re.compile(rf"\b{short}\.", re.IGNORECASE), full)
    for short, full in [
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
    ]
]
_WHITESPACE = re.compile(r"\s+")


def ascii_fold(text: str) -> str:
    """Unicode -> closest ASCII (Unidecode)."""
    return unidecode(text)


def expand_abbreviations(text: str) -> str:
    for pattern, full in _ABBREVIATIONS:
        text = pattern.sub(full, text)
    return text


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text)


def english_clean(text: str) -> str:
    """ASCII fold -> lower case -> abbreviations (the part of ``english_cleaners2`` before espeak)."""
    return expand_abbreviations(ascii_fold(text).lower())
