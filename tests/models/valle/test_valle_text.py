"""VALL-E text front end: the reference's token split, symbol tables, id layout."""

from __future__ import annotations

import pytest

from models.tts.valle.text import SymbolTable, TextError, build_symbols, read_symbol_file, split_phonemized


def test_split_keeps_word_boundaries_and_punctuation():
    tokens = split_phonemized("h|ə|l|oʊ,_w|ɜː|l|d!_ɪ|ɾ")
    assert tokens == ["h", "ə", "l", "oʊ", ",", "_", "w", "ɜː", "l", "d", "!", "_", "ɪ", "ɾ"]
    # the length identity the reference asserts: joined tokens == phonemized minus phone separators
    text = "ɐ    m|iː|n?_ɹ|ɪ|z|ɜː|v;_h|ɪ|z."
    assert len("".join(split_phonemized(text))) == len(text.replace("|", "")) - text.count(" ")


def test_symbol_table_ids_and_errors(tmp_path):
    symbols = build_symbols([["b", "a", "_"], ["a", "c"]])
    assert symbols == ["<pad>", "<bos>", "<eos>", "_", "a", "b", "c"]
    table = SymbolTable(symbols)
    assert table.encode(["a", "_", "c"]) == [1, 4, 3, 6, 2]
    with pytest.raises(TextError, match="in utt7: x z"):
        table.encode(["a", "z", "x"], source="utt7")
    path = tmp_path / "unique_text_tokens.k2symbols"
    path.write_text("".join(f"{s} {i}\n" for i, s in enumerate(symbols)))
    assert read_symbol_file(path) == symbols
    path.write_text("<pad> 0\n<bos> 2\n")
    with pytest.raises(TextError, match="ids are not"):
        read_symbol_file(path)
