"""processors.text: cleaners, unknown-symbol reporting, degenerate input, blanks."""

from __future__ import annotations

import logging

import pytest

from processors.text import SYMBOL_TO_ID, SYMBOLS, TextError, TextFrontend, UnknownSymbolError, cleaned_to_ids, intersperse
from processors.text.cleaners import english_clean


def test_cleaner_folds_ascii_and_expands_abbreviations():
    assert english_clean("Dr. Müller and Capt. O’Hara — St. Ives") == "doctor muller and captain o'hara -- saint ives"
    # Released behaviour: the "." is consumed without inserting a space; only whole-word abbreviations match.
    assert english_clean("Mr.Smith drst. ST. X") == "mistersmith drst. saint x"


def test_unknown_symbols_are_reported_not_dropped(caplog):
    with pytest.raises(UnknownSymbolError) as err:
        cleaned_to_ids("həlˈoʊ (wˈɜːld)", source="hello (world)")
    assert "'('" in str(err.value) and "')'" in str(err.value) and "hello (world)" in str(err.value)
    with caplog.at_level(logging.WARNING, logger="processors.text.frontend"):
        ids = cleaned_to_ids("hə(l)", on_unknown="warn")
    assert ids == [SYMBOL_TO_ID[c] for c in "həl"]
    assert "'('" in caplog.text and "')'" in caplog.text


@pytest.mark.parametrize("text", ["", "   \n", "?!", "... !"])
def test_degenerate_text_is_a_clear_error(text):
    with pytest.raises(TextError):
        TextFrontend()(text)


def test_long_text_and_limit():
    sentence = "The quick brown fox jumps over the lazy dog. "
    long = TextFrontend()(sentence * 20)
    one = TextFrontend()(sentence)
    assert len(long["ids"]) > 19 * len(one["ids"])  # nothing truncated
    with pytest.raises(TextError, match="max_symbols=50"):
        TextFrontend(max_symbols=50)(sentence * 2)


def test_blanks_and_ids_in_range():
    out = TextFrontend()("Hello world, how are you?")
    assert out["ids_blank"] == intersperse(out["ids"]) and len(out["ids_blank"]) == 2 * len(out["ids"]) + 1
    assert all(0 < i < len(SYMBOLS) for i in out["ids"]) and out["ids_blank"][::2] == [0] * (len(out["ids"]) + 1)
    assert "".join(SYMBOLS[i] for i in out["ids"]) == out["cleaned"]
    assert TextFrontend(add_blank=False)("Hello")["ids_blank"] == TextFrontend()("Hello")["ids"]


@pytest.mark.parametrize("config, key", [("models/tts/vits/configs/ljs_base.json5", "n_vocab"),
                                         ("models/tts/vits/configs/tiny.json5", "n_vocab"),
                                         ("models/tts/glow_wavegan/configs/base.json5", "n_vocab"),
                                         ("models/tts/wavegrad2/configs/paper.json5", "n_symbols")])
def test_shipped_configs_embed_exactly_the_symbol_table(config, key):
    """Configs of models fed by this front end state the table's size: it must be the table's."""
    from pathlib import Path

    import json5

    root = Path(__file__).resolve().parents[2]
    assert json5.loads((root / config).read_text(encoding="utf-8"))["model"][key] == len(SYMBOLS)


def test_espeak_word_joins_do_not_warn_but_other_phonemizer_warnings_do(caplog):
    """espeak-ng joins "was a" into one phonetic word; phonemizer's word-count warning about it is dropped, the
    IPA is unchanged, and phonemizer's other warnings still reach the user."""
    from processors.text.g2p import phonemize

    with caplog.at_level(logging.WARNING):
        ipa = phonemize("It was a sunny day.")
        logging.getLogger("phonemizer.espeak").warning("language switch flags have been kept")
    assert "wʌzɐ" in ipa
    messages = [record.getMessage() for record in caplog.records]
    assert not any("words count mismatch" in m for m in messages), messages
    assert "language switch flags have been kept" in messages
