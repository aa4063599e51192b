"""English text normaliser for WER/CER, in the spirit of Whisper's ``EnglishTextNormalizer``.

Both the reference transcript and the ASR hypothesis go through :func:`normalize_english` before jiwer sees
them, so differences of *writing* are not counted as recognition errors.  Steps, in order:

1. Unicode NFKC; curly quotes and apostrophes -> ``'``; lower case.
2. Annotations removed: ``[noise]``, ``<sil>``, ``{...}`` (ASR/corpus markup).  Parentheses are dropped but
   their content kept (in a TTS script it is spoken).
3. Hesitations removed: hmm, mm, mhm, uh, um, er, ah, eh (whole words).
4. Contractions expanded: won't -> will not, can't/cannot -> can not, let's -> let us, ma'am -> madam,
   y'all -> you all, gonna/wanna/gotta -> going to/want to/got to, then the general endings n't -> not,
   're -> are, 's -> is, 'd -> would, 'll -> will, 've -> have, 'm -> am (as Whisper does, a possessive 's also
   becomes "is": harmless because both sides get the same rewrite).
5. Titles spelled out: mr -> mister, mrs -> missus, ms -> miss, dr -> doctor, st -> saint, prof -> professor,
   jr -> junior, sr -> senior, capt -> captain, gen -> general, gov -> governor, lt -> lieutenant,
   sgt -> sergeant, col -> colonel, rev -> reverend, hon -> honorable, vs -> versus.
6. Numbers written in digits -> words (:mod:`evaluation.text_numbers`: cardinals, years, ordinals, decimals,
   currency, percent); ``&`` -> and, ``%`` -> percent, ``+`` -> plus, ``@`` -> at.
7. Hyphens, slashes and every other punctuation or symbol -> space; leftover apostrophes dropped
   (o'clock -> oclock); diacritics stripped (café -> cafe).
8. British -> American spelling (:mod:`evaluation.english_spelling`), whole words.
9. Whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List

from evaluation.english_spelling import BRITISH_TO_AMERICAN
from evaluation.text_numbers import verbalize_numbers

_ANNOTATION_RE = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")
_HESITATION_RE = re.compile(r"\b(?:hmm+|mm+|mhm+|uh+|um+|er|ah+|eh)\b")

_SPECIFIC_CONTRACTIONS = (
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\bcannot\b", "can not"),
    (r"\bshan't\b", "shall not"), (r"\blet's\b", "let us"), (r"\bma'am\b", "madam"),
    (r"\by'all\b", "you all"), (r"\bain't\b", "aint"), (r"\bgonna\b", "going to"), (r"\bwanna\b", "want to"),
    (r"\bgotta\b", "got to"), (r"'d (been|gone|had|done|seen)\b", r" had \1"),
    (r"'s (been|gone|got|done|had)\b", r" has \1"),
)
_GENERAL_CONTRACTIONS = (
    (r"n't\b", " not"), (r"'re\b", " are"), (r"'s\b", " is"), (r"'d\b", " would"), (r"'ll\b", " will"),
    (r"'ve\b", " have"), (r"'m\b", " am"),
)
_TITLES = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "prof": "professor",
    "jr": "junior", "sr": "senior", "capt": "captain", "gen": "general", "gov": "governor", "lt": "lieutenant",
    "sgt": "sergeant", "col": "colonel", "rev": "reverend", "hon": "honorable", "vs": "versus",
}
_TITLE_RE = re.compile(r"\b(" + "|".join(_TITLES) + r")\b\.?")
_SYMBOL_WORDS = (("&", " and "), ("%", " percent "), ("+", " plus "), ("@", " at "))


def _strip_symbols(text: str) -> str:
    """Punctuation/symbols -> space, combining marks dropped, apostrophes removed."""
    out: List[str] = []
    for char in unicodedata.normalize("NFKD", text):
        category = unicodedata.category(char)
        if category == "Mn":
            continue
        if char == "'":
            continue
        out.append(" " if category[0] in "PSC" else char)
    return "".join(out)


def normalize_english(text: str) -> str:
    """Normalise one English string for WER/CER (see the module docstring for every step)."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").lower()
    text = _ANNOTATION_RE.sub(" ", text)
    text = _HESITATION_RE.sub(" ", text)
    for pattern, repl in _SPECIFIC_CONTRACTIONS + _GENERAL_CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    text = _TITLE_RE.sub(lambda m: _TITLES[m.group(1)] + " ", text)
    text = verbalize_numbers(text)
    for symbol, word in _SYMBOL_WORDS:
        text = text.replace(symbol, word)
    text = _strip_symbols(text)
    words = [BRITISH_TO_AMERICAN.get(word, word) for word in text.split()]
    return " ".join(words)
