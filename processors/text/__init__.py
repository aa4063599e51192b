"""English text front end: cleaners, espeak-ng phonemes, the 178-symbol table, blank interspersing."""

from processors.text.frontend import TextError, TextFrontend, UnknownSymbolError, cleaned_to_ids, intersperse
from processors.text.symbols import BLANK_ID, SYMBOL_TO_ID, SYMBOLS

__all__ = [
    "BLANK_ID",
    "SYMBOLS",
    "SYMBOL_TO_ID",
    "TextError",
    "TextFrontend",
    "UnknownSymbolError",
    "cleaned_to_ids",
    "intersperse",
]
