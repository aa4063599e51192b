"""VALL-E text front end: espeak-ng phonemes split into the reference's tokens, and the symbol table.

lifeiteng/Amphion phonemise with ``EspeakBackend("en-us", preserve_punctuation=True, with_stress=False,
tie=False, language_switch="keep-flags", words_mismatch="ignore")`` and separators word ``_``, syllable ``-``,
phone ``|``; each word is split into ``\\w+`` runs and single punctuation marks (phone separators removed) and
``_`` stays as a word-boundary token. Ids: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, then the sorted unique tokens of
the training corpus — so the table belongs to the checkpoint (stored in its config), never rebuilt at inference.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Iterable, List, Sequence

from processors.text.frontend import TextError

SPECIAL_SYMBOLS = ("<pad>", "<bos>", "<eos>")
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
WORD, SYLLABLE, PHONE = "_", "-", "|"
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@functools.lru_cache(maxsize=4)
def _espeak(language: str):
    from phonemizer.backend import EspeakBackend

    # words_mismatch="ignore" (the reference's choice) still logs a warning per line; keep only errors.
    quiet = logging.getLogger("echelon.valle.espeak")
    quiet.setLevel(logging.ERROR)
    return EspeakBackend(
        language, preserve_punctuation=True, with_stress=False, tie=False, language_switch="keep-flags",
        words_mismatch="ignore", logger=quiet,
    )  # fmt: skip


def split_phonemized(phonemized: str) -> List[str]:
    """``"h|ə|l|oʊ,_w|ɜː|l|d!"`` -> ``["h", "ə", "l", "oʊ", ",", "_", "w", "ɜː", "l", "d", "!"]``."""
    tokens: List[str] = []
    for word in phonemized.split(WORD):
        tokens.extend(t for t in _TOKEN.findall(word) if t != PHONE)
        tokens.append(WORD)
    return tokens[:-1]


def phoneme_tokens(text: str, language: str = "en-us") -> List[str]:
    """Text -> the reference's phoneme tokens (one espeak call on the whole string)."""
    if not text.strip():
        raise TextError("empty text")
    from phonemizer.separator import Separator

    separator = Separator(word=WORD, syllable=SYLLABLE, phone=PHONE)
    phonemized = _espeak(language).phonemize([text.strip()], separator=separator, strip=True, njobs=1)[0]
    tokens = split_phonemized(phonemized)
    if not tokens:
        raise TextError(f"text phonemises to nothing: {text!r}")
    return tokens


def build_symbols(token_lists: Iterable[Sequence[str]]) -> List[str]:
    """Symbol table of a training corpus: specials, then its sorted unique tokens."""
    return list(SPECIAL_SYMBOLS) + sorted({t for tokens in token_lists for t in tokens} - set(SPECIAL_SYMBOLS))


def read_symbol_file(path: str | Path) -> List[str]:
    """The model's symbol table from a reference symbol file (lifeiteng ``unique_text_tokens.k2symbols``,
    Amphion ``symbols.dict``): a k2 ``SymbolTable`` file, one ``symbol id`` per line, ``<eps> 0`` first.

    The references do not use the file's ids: their collator builds ``<pad>, <bos>, <eos>`` + the sorted symbols
    of the file — ``<eps>`` included, which therefore gets an id of its own among the sorted tokens.
    """
    symbols = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise TextError(f"{path}:{number}: expected 'symbol id', got {line!r}")
        symbols.append(fields[0])
    if len(set(symbols)) != len(symbols):
        raise TextError(f"{path}: duplicated symbols")
    if "<eps>" not in symbols:  # k2's SymbolTable always holds it, written or not
        symbols.append("<eps>")
    return build_symbols([symbols])


class SymbolTable:
    def __init__(self, symbols: Sequence[str]):
        if tuple(symbols[:3]) != SPECIAL_SYMBOLS:
            raise TextError(f"symbol table must start with {SPECIAL_SYMBOLS}, got {tuple(symbols[:3])}")
        self.symbols = list(symbols)
        self.ids = {s: i for i, s in enumerate(symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, tokens: Sequence[str], source: str = "") -> List[int]:
        """``<bos>`` + token ids + ``<eos>``; unknown tokens raise :class:`TextError` listing them."""
        unknown = sorted({t for t in tokens if t not in self.ids})
        if unknown:
            where = f" in {source}" if source else ""
            raise TextError(f"phoneme tokens not in the model's symbol table{where}: {' '.join(unknown)}")
        return [BOS_ID] + [self.ids[t] for t in tokens] + [EOS_ID]
