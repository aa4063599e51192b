"""Digits -> English words, the number step of :mod:`evaluation.text_normalizer`.

Direction: we turn *digits into words* on both sides of the WER comparison (Whisper's normaliser goes the
other way, words -> digits).  Word outputs are what pocketsphinx and CTC models produce and what spoken
references say, so this direction needs no parser for spoken numbers.  Readings:

* cardinals without "and": ``123`` -> "one hundred twenty three"; ``1,000,000`` -> "one million";
* years (a bare 4-digit number 1100-1999 or 2010-2099) read as pairs: ``1984`` -> "nineteen eighty four",
  ``1900`` -> "nineteen hundred", ``1905`` -> "nineteen oh five"; 2000-2009 as cardinals ("two thousand five");
* ordinals ``1st 2nd 23rd 100th`` -> "first second twenty third one hundredth";
* decimals ``3.14`` -> "three point one four"; negative ``-5`` -> "minus five";
* currency ``$5`` / ``£2.50`` / ``€1`` -> "five dollars", "two pounds fifty pence", "one euro";
* percent ``5%`` -> "five percent".
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
    "twelve": "twelfth",
}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents")}


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n > 0 or not words:
        words.append(_ONES[n])
    return words


def cardinal(n: int) -> str:
    """Integer -> words, American style without "and" (``-12`` -> "minus twelve")."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 1000:
        return " ".join(_below_thousand(n))
    words: list[str] = []
    for scale, name in _SCALES:
        if n >= scale:
            words += [cardinal(n // scale), name]
            n %= scale
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def year(n: int) -> str:
    """A year as spoken: 1984 -> "nineteen eighty four", 1900 -> "nineteen hundred", 1905 -> "nineteen oh five"."""
    if 2000 <= n <= 2009 or n % 1000 == 0:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {cardinal(low)}"
    return f"{cardinal(high)} {cardinal(low)}"


def ordinal(n: int) -> str:
    """Integer -> ordinal words: 21 -> "twenty first", 100 -> "one hundredth"."""
    words = cardinal(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _is_year(digits: str) -> bool:
    if len(digits) != 4 or digits.startswith("0"):
        return False
    value = int(digits)
    return 1100 <= value <= 1999 or 2000 <= value <= 2099


def _number(digits: str, fraction: str | None) -> str:
    """Plain number with optional decimal part (digits read one by one)."""
    grouped = "," in digits  # "1,250" is a count, "1250" may be a year
    digits = digits.replace(",", "")
    whole = year(int(digits)) if fraction is None and not grouped and _is_year(digits) else cardinal(int(digits))
    if fraction:
        whole += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return whole


def _currency(match: re.Match[str]) -> str:
    unit_one, unit_many, sub_one, sub_many = _CURRENCIES[match.group(1)]
    whole = int(match.group(2).replace(",", ""))
    cents = match.group(3)
    words = f"{cardinal(whole)} {unit_one if whole == 1 else unit_many}"
    if cents:
        value = int(cents.ljust(2, "0")[:2])
        if value:
            words += f" {cardinal(value)} {sub_one if value == 1 else sub_many}"
    return f" {words} "


_CURRENCY_RE = re.compile(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?\b")
_PERCENT_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?%")
_ORDINAL_RE = re.compile(r"\b(\d[\d,]*)(st|nd|rd|th)\b")
_NEGATIVE_RE = re.compile(r"(?<![\w.])-(\d)")
_NUMBER_RE = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\b")


def verbalize_numbers(text: str) -> str:
    """Replace every number written in digits (with currency, %, ordinal suffix, sign) by its words."""
    text = _CURRENCY_RE.sub(_currency, text)
    text = _PERCENT_RE.sub(lambda m: f"{m.group(1)} percent", text)
    text = _ORDINAL_RE.sub(lambda m: f" {ordinal(int(m.group(1).replace(',', '')))} ", text)
    text = _NEGATIVE_RE.sub(r"minus \1", text)
    text = _NUMBER_RE.sub(lambda m: f" {_number(m.group(1), m.group(2))} ", text)
    return " ".join(text.split())
