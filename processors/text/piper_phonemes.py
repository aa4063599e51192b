"""Text -> Piper phoneme ids for Piper VITS voices: the ids the piper-tts runtime (1.8.0) gives, from our own code.

A Piper voice's ``VOICE.onnx.json`` holds its ``phoneme_id_map`` (espeak-ng IPA symbol -> ids) and its espeak
voice.  The piper-tts runtime phonemises with the espeak-ng it bundles, clause by clause as espeak-ng ends them,
appends the punctuation espeak-ng reports for each clause, splits the result into Unicode code points after NFD
decomposition (``ç`` -> ``c`` + combining cedilla), and speaks **sentence by sentence**, each framed as
``^ _ p1 _ p2 _ ... pn _ $`` (BOS ``^``, PAD ``_`` after each symbol, EOS ``$``).  This module does the same; no
code of the GPL ``piper-tts`` package is used (it is only the reference in the tests,
``tests/models/vits/test_piper_runtime_ids.py``: equal ids on 242 varied sentences, equal lengths on 41).

**Which espeak-ng.**  piper-tts 1.8.0 bundles an espeak-ng 1.52 build; Debian's system espeak-ng is 1.51, whose
English differs (``four`` -> ``oː`` where 1.52 says ``ɔː``, among others).  Piper voices therefore use espeak-ng
1.52.0 from the ``espeakng-loader`` package (its ``libespeak-ng.so`` and ``espeak-ng-data``; pinned in
requirements.txt), through the small ctypes binding below.  Echelon's other front ends keep the system espeak-ng
through phonemizer (:mod:`processors.text.g2p`, the IPA their models were trained on); the two libraries live side
by side in one process (see :func:`_load_library`).

**Clauses.**  ``espeak_TextToPhonemes`` translates one clause per call, ending it where espeak-ng's own clause
reader does (``Dr. Smith`` ends a sentence after ``Dr.``; ``e.g. the`` does not; ``1,234`` stays a number).
Released 1.52.0 does not report which punctuation ended the clause, so it is read from the text just before
where espeak-ng stopped: ``. ? !`` end a sentence and are kept (``?!`` counts as its first mark), ``, : ;`` are
kept followed by a space, en and em dashes (``–`` ``—``) count as ``;``, an ellipsis (``…`` or three or more dots)
ends a clause with no mark, the end of the text ends a sentence with no mark (a closing quote after ``.`` makes
an empty last clause, dropped), two line breaks end a sentence with no mark.  That is what piper-tts appends:
it keeps only the six marks and passes the others (ellipsis, paragraph, end of text) as nothing.

**The linking ʲ.**  espeak-ng inserts a "linking j" phoneme ``;`` between an i-like vowel and a following vowel
(``he ate``); its IPA name is hidden after an i vowel (``IF prevPh(#i) THEN ipa NULL``).  piper-tts's build
comes from espeak-ng's development tree between 1.52 and the fix of that regression (upstream commit
a631c224, "restore prevPh conditions in phoneme mnemonic output"), where every ``prevPh`` condition is false
when IPA is written, so it prints ``ʲ`` for every linking j (``hiːʲ ˈeɪt``).  The voices were not trained on it,
but the runtime speaks it, so we reproduce it: each clause is read twice, as IPA and as espeak's phoneme
mnemonics, both with a separator between phonemes, and an empty IPA name whose mnemonic is ``;`` becomes ``ʲ``.
Other ``prevPh``-conditioned IPA names of other languages' phoneme tables are not reproduced.

Also not reproduced: Piper's ``[[ raw phonemes ]]`` blocks and its ``vowel_clusters`` option (no English
voice uses them).  espeak-ng's language-switch flags (``(fr)``) are removed, as Piper removes them.

Symbols missing from the voice's map are never silently dropped: ``on_unknown="error"`` (default) raises
:class:`~processors.text.frontend.UnknownSymbolError` listing them, ``"warn"`` drops them (Piper's behaviour)
and logs them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from processors.text.frontend import TextError, UnknownSymbolError
from processors.text.g2p import PhonemizerError
from utils.wording import agree

logger = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"
#: the package that brings espeak-ng 1.52 (library + data) for Piper voices (pinned in requirements.txt)
ESPEAK_PACKAGE = "espeakng-loader==0.2.4"
ESPEAK_VERSION = "1.52.0"

_IPA = 0x02  # espeakPHONEMES_IPA; bits 8-23 of the mode: a separator written between phonemes
_SEPARATOR = "\ue000"  # a private-use code point: never part of a phoneme's name
_UTF8 = 1  # espeakCHARS_UTF8
_SYNCHRONOUS = 0x02  # AUDIO_OUTPUT_SYNCHRONOUS: no audio device is opened
_LINKING_J, _LINKING_J_IPA = ";", "\u02b2"  # espeak's linking-j phoneme and the name piper-tts prints for it
_LANGUAGE_FLAG = re.compile(r"\([^)]+\)")  # espeak's "(fr)" ... "(en)" language switches

#: punctuation that ends a clause -> (the mark Piper appends, whether the clause ends a sentence)
CLAUSE_MARKS: Dict[str, Tuple[str, bool]] = {
    ".": (".", True), "?": ("?", True), "!": ("!", True), ",": (",", False), ":": (":", False), ";": (";", False),
    "\u2013": (";", False), "\u2014": (";", False),  # en and em dash: espeak's "extended dash", a semicolon
    "\u2026": ("", False),  # ellipsis: a clause, its mark not one Piper keeps
    "\u00a1": ("", False), "\u00bf": ("", False),  # inverted ! and ? (Spanish)
    "\u037e": ("?", True),  # Greek question mark
    "\u3002": ("", True), "\uff01": ("", True), "\uff1f": ("", True),  # CJK full stop, full-width ! ?: no space
    "\u3001": ("", False), "\uff0c": ("", False), "\uff1a": ("", False), "\uff1b": ("", False),  # 、，：；
}
_QUESTION_OR_EXCLAMATION = "?!"
_SENTENCE_MARKS = {".", "?", "!"}


@dataclass
class Clause:
    """One clause as espeak-ng read it: its IPA (language flags removed) and what Piper appends after it."""

    phonemes: str
    mark: str
    ends_sentence: bool

    def piper_text(self) -> str:
        """The clause as piper-tts writes it: phonemes, mark, a space after ``, : ;``; NFD."""
        text = self.phonemes + self.mark + (" " if self.mark in (",", ":", ";") else "")
        return unicodedata.normalize("NFD", text)


# --------------------------------------------------------------------------- espeak-ng 1.52 through ctypes
def _load_library(path: str) -> ctypes.CDLL:
    """``path`` loaded by its full path.  The system libespeak-ng (phonemizer's) has the same soname
    (``libespeak-ng.so.1``), and a later ``dlopen`` by that bare name -- phonemizer's -- would get whichever of
    the two is loaded first; so the system one, when there is one, is loaded first."""
    system = ctypes.util.find_library("espeak-ng")
    if system:
        try:
            ctypes.CDLL(system)
        except OSError:
            pass
    return ctypes.CDLL(path)


class EspeakNG:
    """espeak-ng 1.52.0 of ``espeakng-loader`` (library and data) through ctypes.  espeak-ng keeps its state
    in globals: one instance per process (:func:`espeak`), every call under its lock."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise PhonemizerError(f"Piper voices phonemise with espeak-ng {ESPEAK_VERSION} from the "
                                  f"espeakng-loader package, which is not installed ({err}); "
                                  f"pip install {ESPEAK_PACKAGE}") from err
        try:
            lib = _load_library(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as err:
            raise PhonemizerError(f"espeakng-loader's espeak-ng cannot be loaded ({err}); reinstall "
                                  f"{ESPEAK_PACKAGE}") from err
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        if lib.espeak_Initialize(_SYNCHRONOUS, 0, data.encode(), 0) <= 0:
            raise PhonemizerError(f"espeak-ng of espeakng-loader failed to start with its data {data}")
        found = lib.espeak_Info(None).decode()
        if found != ESPEAK_VERSION:
            raise PhonemizerError(f"espeakng-loader brings espeak-ng {found}, Piper voices need {ESPEAK_VERSION}: "
                                  f"pip install {ESPEAK_PACKAGE}")
        self.version = found
        self._lib = lib
        self._lock = threading.Lock()
        self._voice: Optional[str] = None

    def _set_voice(self, voice: str) -> None:
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise PhonemizerError(f"espeak-ng {self.version} has no voice {voice!r}")
            self._voice = voice

    def _read(self, text: bytes, mode: int) -> List[Tuple[str, Optional[int]]]:
        """Every clause of ``text``: ``(phonemes, byte offset where espeak-ng stopped or None at the end)``.  The
        loop always runs to the end of the text: espeak-ng carries a character over from one call to the next."""
        buffer = ctypes.create_string_buffer(text)
        start = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(start)
        clauses = []
        while pointer.value is not None:
            phonemes = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _UTF8, mode)
            if phonemes is None:  # the text could not be decoded (never for UTF-8 from a str)
                raise PhonemizerError(f"espeak-ng could not read the text {text[:80]!r}")
            clauses.append((phonemes.decode("utf-8"), None if pointer.value is None else pointer.value - start))
        return clauses

    def clauses(self, text: str, voice: str = "en-us") -> List[Clause]:
        """``text`` as espeak-ng reads it, clause by clause, with Piper's marks."""
        data = text.replace("\x00", " ").encode("utf-8")
        with self._lock:
            self._set_voice(voice)
            ipa = self._read(data, _IPA | ord(_SEPARATOR) << 8)
            names = self._read(data, ord(_SEPARATOR) << 8)
        if [end for _, end in ipa] != [end for _, end in names]:  # the same reader both times
            raise PhonemizerError(f"espeak-ng split {text[:80]!r} into different clauses on two readings")
        out, begin = [], 0
        for (phonemes, end), (mnemonics, _) in zip(ipa, names):
            mark, ends_sentence, begin = clause_end(data, begin, end)
            phonemes = _LANGUAGE_FLAG.sub("", with_linking_j(phonemes, mnemonics))
            out.append(Clause(phonemes, mark, ends_sentence))
        return out


@functools.lru_cache(maxsize=1)
def espeak() -> EspeakNG:
    """The process's espeak-ng 1.52 (created on first use)."""
    return EspeakNG()


_misaligned_logged = False


def with_linking_j(ipa: str, mnemonics: str) -> str:
    """The clause's IPA without separators, with piper-tts's ``ʲ`` for each hidden linking j (see the module
    doc): phoneme ``k`` of a word in ``ipa`` is phoneme ``k`` in ``mnemonics``.  A word whose phonemes do not
    pair up (an IPA name starting with a modifier letter is written without a separator) is kept as it is."""
    global _misaligned_logged
    words_ipa, words_names = ipa.split(" "), mnemonics.split(" ")
    if len(words_ipa) != len(words_names):
        words_names = [""] * len(words_ipa)
    out = []
    for word, names in zip(words_ipa, words_names):
        phones, mnemonic = word.split(_SEPARATOR), names.split(_SEPARATOR)
        if len(phones) != len(mnemonic):
            if not _misaligned_logged and _LINKING_J in names:
                logger.warning("cannot place espeak-ng's linking j in %r (%r); it may differ from piper-tts", word,
                               names)
                _misaligned_logged = True
            out.append("".join(phones))
            continue
        out.append("".join(_LINKING_J_IPA if (p == "" and m == _LINKING_J) else p for p, m in zip(phones, mnemonic)))
    return " ".join(out)


def clause_end(text: bytes, begin: int, end: Optional[int]) -> Tuple[str, bool, int]:
    """What ended the clause espeak-ng read from character ``begin`` of ``text`` (UTF-8) up to byte ``end`` (None:
    the end of the text): ``(mark, ends_sentence, where the next clause begins)``.  espeak-ng stops one character
    past the clause: it has read the next clause's first character (or the quote or bracket after the mark)."""
    decoded = text.decode("utf-8")
    if end is None:
        head, after = decoded, len(decoded)
    else:
        after = len(text[:end].decode("utf-8")) - 1
        head = decoded[:after]
    body = head.rstrip()
    if head[len(body):].count("\n") >= 2:  # a paragraph (with or without punctuation)
        return "", True, after
    last = body[-1:] if body else ""
    if end is None and not any(c.isalnum() for c in body[begin:]):
        return "", True, after  # espeak-ng ends no clause at punctuation before any letter or digit
    if last in _QUESTION_OR_EXCLAMATION:  # a run of ? and ! counts as its first mark
        run = len(body) - len(body.rstrip(_QUESTION_OR_EXCLAMATION))
        last = body[len(body) - run]
    elif last == "." and body.endswith("..."):
        last = "\u2026"
    if last in CLAUSE_MARKS:
        mark, ends_sentence = CLAUSE_MARKS[last]
        return mark, ends_sentence, after
    return "", end is None, after  # the end of the text, or a clause too long for espeak-ng's buffer


# --------------------------------------------------------------------------- Piper's phonemes and ids
def piper_sentences(text: str, espeak_voice: str = "en-us") -> List[str]:
    """The sentences piper-tts speaks for ``text``: each the string of its phoneme symbols (one per code point,
    NFD), clauses with their marks; sentences without symbols are dropped (Piper skips them)."""
    sentences, current = [], []
    for clause in espeak().clauses(text, espeak_voice):
        current.append(clause.piper_text())
        if clause.ends_sentence:
            sentences.append("".join(current))
            current = []
    sentences.append("".join(current))
    return [s for s in sentences if s]


def piper_phonemes(text: str, espeak_voice: str = "en-us") -> str:
    """Piper's phoneme string of ``text``: its sentences (:func:`piper_sentences`) joined by a space."""
    return " ".join(piper_sentences(text, espeak_voice))


class PiperPhonemeFrontend:
    """English (or any espeak voice) text -> ``{"cleaned", "ids", "ids_blank", "sentences"}`` with a Piper voice's
    ids.

    ``sentences`` holds one framed id sequence per sentence, as the piper-tts runtime speaks them (the VITS
    synthesizer speaks them one by one and joins the audio, as Piper does).  ``ids`` and ``ids_blank`` are the
    whole text as one framed sequence (the sentences joined by a space; Piper's PAD plays the role of VITS's
    blank), what training on a transcript reads.

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
        sentences = piper_sentences(text, self.espeak_voice)
        phonemes = " ".join(sentences)
        if not phonemes.strip(" ,.;:!?"):
            raise TextError(f"text {text!r} has no speakable content (phonemes {phonemes!r})")
        ids = self.phonemes_to_ids(phonemes, text)
        return {"cleaned": phonemes, "ids": ids, "ids_blank": list(ids),
                "sentences": [self.phonemes_to_ids(s, text) for s in sentences]}

    def sentence_ids(self, text: str) -> List[List[int]]:
        """One framed id sequence per sentence of ``text``, as piper-tts speaks them."""
        return self(text)["sentences"]  # type: ignore[return-value]
