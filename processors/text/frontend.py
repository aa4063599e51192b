"""Text -> symbol ids for HierSpeech++ TTV and VITS: clean, phonemise, map to the 178-symbol table, add blanks.

Unknown symbols (anything the phonemiser emits that is not in :data:`SYMBOLS`) are never silently dropped.
``on_unknown="error"`` (default) raises :class:`UnknownSymbolError` listing them; ``"warn"`` removes them and logs
a warning that lists them.  With the pinned phonemizer 3.2.1 this does not happen for English; phonemizer >= 3.4
keeps ``( ) [ ]``, which then hit this check (choose ``"warn"`` to drop them the way 3.2.1 effectively did).

Degenerate input: empty or whitespace-only text, and text that phonemises to punctuation only, raise
:class:`TextError`.  There is no length limit unless ``max_symbols`` is given (TTV trained on <= 200 symbols
before blanks); longer inputs then raise :class:`TextError` naming the length, so callers can split sentences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from processors.text.g2p import english_to_ipa
from processors.text.symbols import BLANK_ID, PUNCTUATION, SYMBOL_TO_ID

logger = logging.getLogger(__name__)

_NON_SPEECH = set(PUNCTUATION)  # punctuation and space


class TextError(ValueError):
    """Text that cannot become a symbol sequence (empty, only punctuation, too long, unknown symbols)."""


class UnknownSymbolError(TextError):
    """The phonemised text holds symbols outside the 178-symbol table."""


def intersperse(ids: Sequence[int], blank: int = BLANK_ID) -> List[int]:
    """``[a, b]`` -> ``[blank, a, blank, b, blank]`` (length 2n + 1)."""
    out = [blank] * (2 * len(ids) + 1)
    out[1::2] = list(ids)
    return out


def cleaned_to_ids(cleaned: str, on_unknown: str = "error", source: Optional[str] = None) -> List[int]:
    """Map each character of a phonemised string to its id; see the module doc for ``on_unknown``."""
    if on_unknown not in ("error", "warn"):
        raise ValueError(f"on_unknown must be 'error' or 'warn', got {on_unknown!r}")
    unknown = sorted({ch for ch in cleaned if ch not in SYMBOL_TO_ID})
    if unknown:
        listed = " ".join(repr(ch) for ch in unknown)
        where = f" in {source!r}" if source is not None else ""
        if on_unknown == "error":
            raise UnknownSymbolError(f"symbols not in the 178-symbol table{where}: {listed} (phonemes {cleaned!r})")
        logger.warning("dropping symbols not in the 178-symbol table%s: %s", where, listed)
    return [SYMBOL_TO_ID[ch] for ch in cleaned if ch in SYMBOL_TO_ID]


@dataclass
class TextFrontend:
    """English text -> ``{"cleaned", "ids", "ids_blank"}`` as ``ttv_v1.text`` / VITS ``get_text`` compute it.

    Args:
        add_blank: intersperse the blank id 0 (encoder input); CTC targets use ``ids`` without blanks.
        on_unknown: ``"error"`` or ``"warn"`` for symbols outside the table.
        max_symbols: optional limit on ``len(ids)`` (before blanks).
    """

    add_blank: bool = True
    on_unknown: str = "error"
    max_symbols: Optional[int] = None

    def phonemize(self, text: str) -> str:
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise TextError("empty text: nothing to synthesise")
        return english_to_ipa(text)

    def __call__(self, text: str) -> Dict[str, object]:
        cleaned = self.phonemize(text)
        if not cleaned or set(cleaned) <= _NON_SPEECH:
            raise TextError(f"text {text!r} has no speakable content (phonemes {cleaned!r})")
        ids = cleaned_to_ids(cleaned, self.on_unknown, source=text)
        if self.max_symbols is not None and len(ids) > self.max_symbols:
            raise TextError(
                f"text of {len(ids)} symbols exceeds max_symbols={self.max_symbols}; split it into sentences: "
                f"{text[:60]!r}..."
            )
        return {"cleaned": cleaned, "ids": ids, "ids_blank": intersperse(ids) if self.add_blank else list(ids)}
