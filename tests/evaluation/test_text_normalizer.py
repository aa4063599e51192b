"""English normaliser and WER/CER counting."""

from __future__ import annotations

import math

import pytest

from evaluation.intelligibility import corpus_error_rates, empty_hypothesis_counts, error_counts
from evaluation.text_normalizer import normalize_english
from evaluation.text_numbers import cardinal, ordinal, verbalize_numbers, year


@pytest.mark.parametrize(
    "written, spoken",
    [
        ("Hello, World!", "hello world"),
        ("It's 5 o'clock.", "it is five oclock"),
        ("We can't, won't and shouldn't.", "we can not will not and should not"),
        ("Mr. Smith met Dr. Jones on St. Paul's day", "mister smith met doctor jones on saint paul is day"),
        ("The colour of the theatre's centre", "the color of the theater is center"),
        ("They realised it and travelled", "they realized it and traveled"),
        ("In 1984 he paid $3.50 for 25% of it", "in nineteen eighty four he paid three dollars fifty cents for twenty five percent of it"),
        ("the 21st century", "the twenty first century"),
        ("um [noise] well-known <sil> cafés", "well known cafes"),
        ("1,250 people", "one thousand two hundred fifty people"),
    ],
)
def test_normalizer_maps_writing_variants_together(written: str, spoken: str) -> None:
    assert normalize_english(written) == spoken


def test_normalizer_is_idempotent_and_case_insensitive() -> None:
    text = "The Norsemen considered the RAINBOW as a bridge, in 1905; Colour & 3.14!"
    once = normalize_english(text)
    assert normalize_english(once) == once
    assert normalize_english(text.upper()) == once


def test_number_words() -> None:
    assert cardinal(0) == "zero"
    assert cardinal(115) == "one hundred fifteen"
    assert cardinal(2_000_017) == "two million seventeen"
    assert year(1900) == "nineteen hundred" and year(1905) == "nineteen oh five" and year(2005) == "two thousand five"
    assert ordinal(12) == "twelfth" and ordinal(30) == "thirtieth" and ordinal(101) == "one hundred first"
    assert verbalize_numbers("-3") .strip() == "minus three"


def test_error_counts_keep_word_boundaries() -> None:
    # one substituted word out of four: WER 1/4, not a sentence error of 1 (spaces are kept)
    counts = error_counts("the cat sat down", "the cat sat town")
    assert counts["wer"] == pytest.approx(0.25)
    assert counts["wer_words"] == 4 and counts["wer_errors"] == 1
    assert counts["cer"] == pytest.approx(1 / len("the cat sat down"))
    insertions = error_counts("a b", "a x b y z")
    assert insertions["wer"] == pytest.approx(1.5)  # WER may exceed 100 %


def test_empty_hypothesis_is_all_deletions_and_corpus_pools_counts() -> None:
    empty = empty_hypothesis_counts("one two three")
    assert empty["wer"] == 1.0 and empty["wer_errors"] == 3
    assert error_counts("one two three", "")["wer"] == 1.0
    good = error_counts("a b c d e f g", "a b c d e f g")
    pooled = corpus_error_rates([empty, good, {"wer_errors": math.nan}])
    assert pooled["wer_corpus"] == pytest.approx(3 / 10)  # pooled, not the mean of 1.0 and 0.0
    with pytest.raises(ValueError, match="non-empty reference"):
        error_counts("  ", "something")
