"""The 178-symbol table of VITS / HierSpeech++ (keithito layout): id 0 = pad/blank, then punctuation and
space (1-16), A-Z, a-z, IPA letters and marks.

The table holds the apostrophe twice (ids 174 and 176, as released); the lookup maps ``'`` to the later one,
176, exactly like the official ``{s: i for i, s in enumerate(symbols)}``.  Changing anything here changes the
embedding rows of every released checkpoint.
"""

from __future__ import annotations

from typing import Dict, List

PAD = "_"
PUNCTUATION = ';:,.!?¡¿—…"«»“” '
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LETTERS_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃ"
    "ˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ"
)

SYMBOLS: List[str] = [PAD] + list(PUNCTUATION) + list(LETTERS) + list(LETTERS_IPA)
BLANK_ID = 0

# Later duplicates win, as in the released code (the apostrophe maps to 176).
SYMBOL_TO_ID: Dict[str, int] = {s: i for i, s in enumerate(SYMBOLS)}
