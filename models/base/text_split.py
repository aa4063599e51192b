"""Splitting long text into sentences a TTS model can speak (e.g. the TTV was trained on <= 200 symbols, <= 12 s).

Official users hit failures and random pauses on long inputs (HierSpeech++ issues #38/#40): the whole text
went through the TTV in one pass. Here text is cut at sentence ends (. ! ? … followed by optional closing
quotes/brackets and a space, not after common abbreviations such as "Mr." or initials, and at line breaks);
pieces still longer than ``max_chars`` are cut again at ; : , and dashes, then between words. Pieces without any
letter or digit (e.g. "..." or "--") are dropped; the caller joins the spoken pieces with short pauses.
"""

from __future__ import annotations

import re
import threading
from typing import Any, List

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+|\s+-\s+")
# abbreviations expanded by the English cleaners (their period does not end a sentence)
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "co", "jr", "sr", "maj", "gen", "drs", "rev", "lt", "hon", "sgt",
                  "capt", "esq", "ltd", "col", "ft", "vs", "etc", "no", "prof", "mt"}


def _sentences(text: str) -> List[str]:
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.group() != "\n":
            before = re.search(r"(\w+)\.+$", text[start:match.start() + 1] if text[match.start()] == "." else "")
            if before and (before.group(1).lower() in _ABBREVIATIONS or len(before.group(1)) == 1):
                continue
        out.append(text[start:match.end()])
        start = match.end()
    out.append(text[start:])
    return out
_SPEAKABLE = re.compile(r"[A-Za-z0-9À-ÖØ-öø-ÿ]")


def _split_long(piece: str, max_chars: int) -> List[str]:
    if len(piece) <= max_chars:
        return [piece]
    out: List[str] = []
    for clause in _CLAUSE_END.split(piece):
        clause = clause.strip()
        if len(clause) <= max_chars:
            out.append(clause)
            continue
        words, current = clause.split(), ""
        for word in words:  # greedy word packing; a single over-long word stands alone
            if current and len(current) + 1 + len(word) > max_chars:
                out.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            out.append(current)
    # merge tiny neighbours back so clauses are not spoken word by word
    merged: List[str] = []
    for clause in out:
        if merged and len(merged[-1]) + 1 + len(clause) <= max_chars:
            merged[-1] = f"{merged[-1]} {clause}"
        else:
            merged.append(clause)
    return merged


def split_sentences(text: str, max_chars: int = 300) -> List[str]:
    """Text -> speakable pieces of at most ``max_chars`` characters (a single longer word excepted)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    pieces: List[str] = []
    for sentence in _sentences(text):
        sentence = " ".join(sentence.split())
        if not sentence:
            continue
        pieces.extend(p for p in _split_long(sentence, max_chars) if _SPEAKABLE.search(p))
    return pieces


# phonemizer's espeak-ng backend (one per language, shared by every model of the process) is not thread-safe:
# calls from two threads at once garble each other's lines. Every front-end call of a pipeline holds this lock
# (a server runs several models, and several calls of one model, at the same time: serving/workers.py).
FRONT_END_LOCK = threading.Lock()


def front_end_ids(frontend: Any, text: str) -> List[int]:
    """Symbol ids (with blanks) of ``text`` through a ``processors.text.frontend.TextFrontend`` (under
    :data:`FRONT_END_LOCK`); text it cannot speak raises ``TextError`` saying so ("the English front end cannot
    read this text")."""
    from processors.text.frontend import TextError

    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    try:
        with FRONT_END_LOCK:
            return frontend(text)["ids_blank"]
    except TextError as err:
        raise TextError(f"the English front end cannot read this text: {text[:80]!r} ({err})") from err
