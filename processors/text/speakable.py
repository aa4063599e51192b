"""Characters a voice cannot speak: found before the front end, which would otherwise read them out by name.

espeak-ng (behind the Piper and VITS front ends) speaks "🍕🍕" as "pizza pizza" and a Japanese character as
"Chinese letter": text that is not in the voice's language turns into words nobody wrote. A voice declares the
scripts its language is written in (``("LATIN",)`` for English); letters of other scripts, emoji and other
pictographic symbols are *unspeakable*. Digits, punctuation, currency and math signs are spoken normally.

    find_unspeakable("Hi 🍕 there")           -> ["🍕"]
    drop_unspeakable("Hi 🍕 there")           -> "Hi there"
    check_speakable(text, drop=False)          -> text, or TextError naming the characters
"""

from __future__ import annotations

import logging
import unicodedata
from typing import List, Sequence

from processors.text.frontend import TextError

log = logging.getLogger(__name__)

LATIN = ("LATIN",)
_NEVER = {"Co", "Cn", "Cs"}  # private use, unassigned, lone surrogates
_PICTOGRAPHS_FROM = 0x2190  # "other symbols" from the arrows on (dingbats, emoji); below: ° © ® ™ are read fine
_EMOJI_PARTS = {"\u200d", "\ufe0f", "\ufe0e"}  # joiners and variation selectors belong to the emoji they follow


def _unspeakable(char: str, scripts: Sequence[str]) -> bool:
    category = unicodedata.category(char)
    if category in _NEVER or (category == "So" and ord(char) >= _PICTOGRAPHS_FROM):
        return True
    if category.startswith("L"):
        name = unicodedata.name(char, "")
        return not any(name.startswith(script) for script in scripts)
    if category == "Nd":
        return not char.isascii() and not any(unicodedata.name(char, "").startswith(s) for s in scripts)
    return False


def find_unspeakable(text: str, scripts: Sequence[str] = LATIN) -> List[str]:
    """The distinct characters of ``text`` the voice cannot speak, in order of appearance."""
    found: List[str] = []
    for char in text:
        if char not in found and char not in _EMOJI_PARTS and _unspeakable(char, scripts):
            found.append(char)
    return found


def describe(chars: Sequence[str], limit: int = 5) -> str:
    """``'🍕' (SLICE OF PIZZA), '日' (CJK UNIFIED IDEOGRAPH-65E5)``."""
    named = [f"{c!r} ({unicodedata.name(c, f'U+{ord(c):04X}')})" for c in chars[:limit]]
    return ", ".join(named) + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


def drop_unspeakable(text: str, scripts: Sequence[str] = LATIN) -> str:
    """``text`` without its unspeakable characters (and the joiners that belong to them), spaces tidied."""
    bad = set(find_unspeakable(text, scripts)) | _EMOJI_PARTS
    return " ".join("".join(c for c in text if c not in bad).split())


class UnspeakableText(TextError):
    """Text with characters the voice cannot speak: ``chars`` are those characters, ``language`` the voice's
    language. :meth:`message` words the remedy for the caller (a CLI flag, a request field, a demo control)."""

    def __init__(self, chars: Sequence[str], language: str, remedy: str = "pass --drop_unspeakable"):
        self.chars, self.language = list(chars), language
        super().__init__(self.message(remedy))

    def message(self, remedy: str) -> str:
        return (f"the {self.language} voice cannot speak {describe(self.chars)}; remove them or {remedy} to leave "
                f"them out")


def check_speakable(text: str, scripts: Sequence[str] = LATIN, drop: bool = False, language: str = "English") -> str:
    """``text`` if the voice can speak all of it; else :class:`TextError` naming the characters, or (``drop``)
    the text without them and a warning naming them."""
    bad = find_unspeakable(text, scripts)
    if not bad:
        return text
    if not drop:
        raise UnspeakableText(bad, language)
    log.warning("left out what the %s voice cannot speak: %s (in %r)", language, describe(bad), text[:60])
    return drop_unspeakable(text, scripts)
