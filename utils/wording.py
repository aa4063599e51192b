"""Counted nouns and verbs that agree with their count, for every message the toolkit prints.

    plural(1, "item")                 -> "1 item"
    plural(3, "item")                 -> "3 items"
    plural(2, "entry", "entries")     -> "2 entries"
    agree(1, "exists", "exist")       -> "exists"

Zero takes the plural, as in English ("0 items").
"""

from __future__ import annotations

from typing import Optional


def agree(count: int, one: str, many: str) -> str:
    """``one`` when ``count`` is exactly 1, else ``many`` (a verb or noun without the number)."""
    return one if count == 1 else many


def plural(count: int, noun: str, many: Optional[str] = None) -> str:
    """``"<count> <noun>"`` with the noun in the plural unless ``count`` is 1; ``many``: an irregular plural
    (default: ``noun + "s"``)."""
    return f"{count} {agree(count, noun, many or noun + 's')}"
