"""espeak-ng phonemisation through ``phonemizer`` (``EspeakBackend('en-us', preserve_punctuation=True,
with_stress=True)``), as HierSpeech++ and VITS trained.

Version note: the released models used phonemizer 3.2.1 (pinned in requirements.txt) with espeak-ng 1.51.
With 3.2.1, parentheses and brackets are dropped; phonemizer >= 3.4 keeps them as punctuation, and they are not
in the 178-symbol table, so :mod:`processors.text.frontend` reports them (error by default).  Numbers are read by
espeak ("1,234,567" is split at the commas, as in training).
"""

from __future__ import annotations

import functools
import importlib
import logging
import warnings
from types import ModuleType

from processors.text.cleaners import collapse_whitespace, english_clean

logger = logging.getLogger(__name__)

# phonemizer 3.2.1 imports pkg_resources, whose import warns that it is deprecated: a note on phonemizer's own
# packaging, printed on every TTS run and in the server log, that nobody running Echelon can act on. Only that
# warning, and only when phonemizer's import raises it, is silenced; every other warning still shows.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning, module="phonemizer")


class _WordCountMismatchFilter(logging.Filter):
    """Drops phonemizer's "words count mismatch" summary. espeak-ng joins some word pairs into one phonetic word
    ("was a" -> "wʌzɐ"), which phonemizer reports on nearly every sentence even in its "ignore" mode; that IPA
    is what the models were trained on, so the warning tells a user nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("words count mismatch")


_espeak_logger = logging.getLogger("phonemizer.espeak")  # phonemizer's other warnings still show
_espeak_logger.addFilter(_WordCountMismatchFilter())


class PhonemizerError(RuntimeError):
    """espeak-ng or phonemizer is missing or failed; the message says what to install."""


def import_phonemizer(module: str) -> ModuleType:
    """A phonemizer module (``phonemizer.backend``, ...), imported with the filter above in place; a missing
    phonemizer is a :class:`PhonemizerError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise PhonemizerError(f"phonemizer is not installed ({err}); pip install phonemizer==3.2.1") from err


@functools.lru_cache(maxsize=4)
def _backend(language: str):
    EspeakBackend = import_phonemizer("phonemizer.backend").EspeakBackend
    try:
        backend = EspeakBackend(language, preserve_punctuation=True, with_stress=True, logger=_espeak_logger)
    except RuntimeError as err:
        raise PhonemizerError(
            f"espeak-ng is not available for phonemizer ({err}); install it, e.g. `apt-get install espeak-ng`"
        ) from err
    logger.info("phonemizer %s with espeak %s", _phonemizer_version(), backend.version())
    return backend


def _phonemizer_version() -> str:
    from importlib.metadata import version

    return version("phonemizer")


def phonemize(cleaned: str, language: str = "en-us") -> str:
    """IPA with stress marks and punctuation for already-cleaned text; whitespace collapsed."""
    phones = _backend(language).phonemize([cleaned], strip=True, njobs=1)[0]
    return collapse_whitespace(phones)


def english_to_ipa(text: str) -> str:
    """Raw English text -> the ``cleaned`` string of ``english_cleaners2`` (cleaners + espeak-ng en-us)."""
    return phonemize(english_clean(text), "en-us")
