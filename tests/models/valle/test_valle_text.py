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
    # a k2 symbol file as the references write it; their collator re-sorts it with <eps> among the tokens
    path = tmp_path / "unique_text_tokens.k2symbols"
    path.write_text("<eps> 0\n!\t1\n,\t2\na\t3\nb\t4\n_\t5\n")
    assert read_symbol_file(path) == ["<pad>", "<bos>", "<eos>", "!", ",", "<eps>", "_", "a", "b"]
    path.write_text("a 1\nb\n")
    with pytest.raises(TextError, match="expected 'symbol id'"):
        read_symbol_file(path)
