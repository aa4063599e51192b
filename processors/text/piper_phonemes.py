"""Text -> Piper phoneme ids, with our own espeak-ng front end (phonemizer), for Piper VITS voices.

A Piper voice's ``VOICE.onnx.json`` holds its ``phoneme_id_map`` (espeak-ng IPA symbol -> ids) and its espeak
voice.  Piper phonemises clause by clause with espeak-ng (IPA, stress marks kept), appends the clause's
punctuation (``, `` ``: `` ``; `` after a clause, ``.`` ``?`` ``!`` at a sentence end), splits the result into
Unicode code points after NFD decomposition (``ç`` -> ``c`` + combining cedilla), and frames the symbols as
``^ _ p1 _ p2 _ ... pn _ $`` (BOS ``^``, PAD ``_`` after each symbol, EOS ``$``).  This module does the same
with phonemizer's wrapper of the libespeak-ng that :mod:`processors.text.g2p` already uses (the clause text goes
to espeak-ng as it is, so numbers and abbreviations read as espeak reads them); nothing of the GPL ``piper-tts``
package is used or needed.  espeak-ng's language-switch flags (``(fr)``) are removed.

Clauses end where espeak-ng ends them for ordinary text: at ``, . ; : ! ?`` (or a run of them) followed by
white space or the end of the text, so ``1,234`` and ``3.5`` stay numbers.  espeak-ng's abbreviation rules
(``Dr.`` inside a sentence) are not reproduced; sentences of one text are joined with a space into one sequence
(Piper synthesises sentences one by one).

Symbols missing from the voice's map are never silently dropped: ``on_unknown="error"`` (default) raises
:class:`~processors.text.frontend.UnknownSymbolError` listing them, ``"warn"`` drops them (Piper's behaviour)
and logs them.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from typing import Dict, List, Mapping, Sequence

from processors.text.cleaners import collapse_whitespace
from processors.text.frontend import TextError, UnknownSymbolError
from processors.text.g2p import PhonemizerError, import_phonemizer
from utils.wording import agree

logger = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"
#: a clause ends at punctuation followed by white space or the end of the text
CLAUSE_END = re.compile(r"([,.;:!?]+)(?=\s|$)")
#: what Piper appends to a clause's phonemes, by the clause's punctuation
_CLAUSE_SUFFIX = {",": ", ", ":": ": ", ";": "; ", ".": ".", "?": "?", "!": "!"}
_SENTENCE_END = {".", "?", "!"}
_LANGUAGE_FLAG = re.compile(r"\([a-z\-]+\)")  # espeak's "(fr)" ... "(en)" language switches


@functools.lru_cache(maxsize=4)
def _espeak(voice: str):
    """phonemizer's ctypes wrapper of libespeak-ng, set to ``voice`` (one per voice, created once)."""
    EspeakWrapper = import_phonemizer("phonemizer.backend.espeak.wrapper").EspeakWrapper
    try:
        wrapper = EspeakWrapper()
        wrapper.set_voice(voice)
    except RuntimeError as err:
        raise PhonemizerError(f"espeak-ng cannot load voice {voice!r} ({err}); install espeak-ng") from err
    return wrapper


def clause_ipa(clause: str, voice: str = "en-us") -> str:
    """espeak-ng's IPA (stress marks kept) of one clause, as its ``TextToPhonemes`` gives it: the clause text
    goes to espeak untouched (phonemizer's punctuation handling would split ``1,234``)."""
    phones = _espeak(voice).text_to_phonemes(clause).replace("_", "")  # "_" = the wrapper's phoneme separator
    return collapse_whitespace(_LANGUAGE_FLAG.sub("", phones)).strip()


def clause_mark(punctuation: str) -> str:
    """The one mark espeak reports for a run of punctuation (``?!`` -> ``?``, ``...`` -> ``.``)."""
    for mark in ("?", "!"):
        if mark in punctuation:
            return mark
    return punctuation[0]


def split_clauses(text: str) -> List[tuple]:
    """``text`` -> ``[(clause text, mark or "")]`` in order; empty clauses are dropped."""
    pieces = CLAUSE_END.split(collapse_whitespace(text).strip())
    clauses = []
    for start in range(0, len(pieces), 2):
        words = pieces[start].strip()
        mark = clause_mark(pieces[start + 1]) if start + 1 < len(pieces) else ""
        if words:
            clauses.append((words, mark))
    return clauses


def piper_phonemes(text: str, espeak_voice: str = "en-us") -> str:
    """Piper's phoneme string of ``text`` (clauses with their punctuation, sentences joined by a space)."""
    out = []
    for words, mark in split_clauses(text):
        phones = clause_ipa(words, espeak_voice)
        out.append(phones + _CLAUSE_SUFFIX.get(mark, ""))
        if mark in _SENTENCE_END or not mark:
            out.append(" ")
    return unicodedata.normalize("NFD", "".join(out).strip())


class PiperPhonemeFrontend:
    """English (or any espeak voice) text -> ``{"cleaned", "ids", "ids_blank"}`` with a Piper voice's ids.

    ``ids`` and ``ids_blank`` are the same framed sequence (Piper's PAD plays the role of VITS's blank).

    Args:
        phoneme_id_map: symbol -> ids, from the voice's ``.onnx.json``.
        espeak_voice: espeak-ng voice name (``espeak.voice`` in the voice's config).
        on_unknown: ``"error"`` or ``"warn"`` for symbols outside the map.
    """

    def __init__(self, phoneme_id_map: Mapping[str, Sequence[int]], espeak_voice: str = "en-us",
                 on_unknown: str = "error") -> None:
        missing = [s for s in (PAD, BOS, EOS) if s not in phoneme_id_map]
        if missing:
            symbols = agree(len(missing), "symbol", "symbols")
            raise ValueError(f"Piper phoneme_id_map lacks the framing {symbols} {missing}")
        if on_unknown not in ("error", "warn"):
            raise ValueError(f"on_unknown must be 'error' or 'warn', got {on_unknown!r}")
        self.id_map: Dict[str, List[int]] = {k: list(v) for k, v in phoneme_id_map.items()}
        self.espeak_voice = espeak_voice
        self.on_unknown = on_unknown

    def phonemes_to_ids(self, phonemes: str, source: str = "") -> List[int]:
        unknown = sorted({p for p in phonemes if p not in self.id_map})
        if unknown:
            listed = " ".join(repr(p) for p in unknown)
            if self.on_unknown == "error":
                raise UnknownSymbolError(f"symbols not in the Piper voice's map in {source!r}: {listed}")
            logger.warning("dropping symbols not in the Piper voice's map in %r: %s", source, listed)
        ids = self.id_map[BOS] + self.id_map[PAD]
        for phoneme in phonemes:
            if phoneme in self.id_map:
                ids += self.id_map[phoneme] + self.id_map[PAD]
        return ids + self.id_map[EOS]

    def __call__(self, text: str) -> Dict[str, object]:
        if not isinstance(text, str) or not text.strip():
            raise TextError(f"empty text: nothing to synthesise ({text!r})")
        phonemes = piper_phonemes(text, self.espeak_voice)
        if not phonemes.strip(" ,.;:!?"):
            raise TextError(f"text {text!r} has no speakable content (phonemes {phonemes!r})")
        ids = self.phonemes_to_ids(phonemes, text)
        return {"cleaned": phonemes, "ids": ids, "ids_blank": list(ids)}
