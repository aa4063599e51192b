"""Echelon's Piper front end against the piper-tts runtime itself (1.8.0, GPL, the reference only: a test-only pin
in requirements-dev.txt).  Phoneme ids equal piper-tts's own phonemizer and id mapping, sentence by sentence, on
``tests/data/piper_sentences.txt`` (242 varied sentences: numbers, quotes, dashes, abbreviations, questions,
exclamations, brackets, colons, semicolons, currency, dates, ellipses, long sentences) and on punctuation and
layout cases; at zero noise the converted joe voice speaks 41 of those sentences in exactly as many samples as
piper-tts's ``PiperVoice`` (which speaks sentence by sentence, as Echelon does on a Piper voice)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

piper_voice = pytest.importorskip("piper.voice", reason="piper-tts, the reference runtime (GPL, test-only), is not "
                                  "installed: pip install piper-tts==1.8.0 (requirements-dev.txt)")

import torch  # noqa: E402

from bins import convert_piper as convert_cli  # noqa: E402
from models.base.pipeline import load_pipeline  # noqa: E402
from models.tts.vits.piper import installed_voice  # noqa: E402
from processors.text.piper_phonemes import PiperPhonemeFrontend, piper_sentences  # noqa: E402

TEXTS = Path(__file__).resolve().parents[2] / "data" / "piper_sentences.txt"
SENTENCES = [line.rstrip("\n") for line in TEXTS.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
#: how espeak-ng ends clauses and sentences, and what piper-tts keeps of the punctuation
EDGE_CASES = [
    "One two… three four.", "One two ... three four", "One two.... three four.", "One two.. three four.",
    "One two。three four.", "One two、three four.", "One two！three four.", "One two？three four.",
    "One two，three four.", "One two：three four.", "One two；three four.", "¡Hola! ¿Qué tal?",
    "One two – three four.", "One two — three four.", "Wait—what?", "Well –– okay.", "Wait?! Really?!",
    "No!? Yes.", "Hmm?!?! Okay.", "Hello!!! Are you there???", "What‽ No way.", '"Hello." "Goodbye."',
    'He said: "no."', "(This is a test.)", "[Note: see above.]", "(Wait.) Then go.", "Go! (now)",
    "It ends with a comma,", "It ends with a colon:", "It ends with a dash —", "It ends with dots...", "Hello. .",
    "e.g. this one. i.e. that one.", "The U.S.A.'s flag.", "I saw Mr. Brown. He waved.", "1. First item. 2. Second.",
    "It's 5 p.m. Time to go.", "Use the ‘single’ and “double” quotes.", "Temperatures: −5 °C to +5 °C.",
    "x = y + 2.", "#hashtag and @mention.", "100% sure & ready.", "He's 6' 2\" tall.", "A... B... C...",
    "Line one\nline two.", "Line one.\nLine two.", "Para one\n\nPara two.", "Para one.\n\nPara two.", "Q?\n\nA!",
    "Comma,\n\nnext", "  Leading and trailing spaces.  ", "Tab\tseparated, words.", "Hello.\n\n\n",
    "Naïve café in Zürich; Ærø and Øresund.", "word " * 200 + "end.", "word, " * 50 + "end.",
]


@pytest.fixture(scope="module")
def piper_joe():
    return piper_voice.PiperVoice.load(str(installed_voice("joe")))


def piper_ids(voice, text: str) -> List[List[int]]:
    """piper-tts's ids of ``text``: one sequence per sentence it synthesises (it skips empty ones)."""
    return [voice.phonemes_to_ids(phonemes) for phonemes in voice.phonemize(text) if phonemes]


def mismatches(voice, texts: List[str]) -> List[str]:
    frontend = PiperPhonemeFrontend(voice.config.phoneme_id_map, voice.config.espeak_voice)
    out = []
    for text in texts:
        if frontend.sentence_ids(text) != piper_ids(voice, text):
            theirs = ["".join(p) for p in voice.phonemize(text)]
            out.append(f"{text!r}:\n  echelon   {piper_sentences(text)}\n  piper-tts {theirs}")
    return out


def test_ids_equal_piper_tts_on_varied_sentences(piper_joe) -> None:
    assert len(SENTENCES) >= 200
    bad = mismatches(piper_joe, SENTENCES)
    assert not bad, f"{len(bad)}/{len(SENTENCES)} sentences differ:\n" + "\n".join(bad[:10])


def test_ids_equal_piper_tts_on_punctuation_and_layout(piper_joe) -> None:
    bad = mismatches(piper_joe, EDGE_CASES)
    assert not bad, f"{len(bad)}/{len(EDGE_CASES)} texts differ:\n" + "\n".join(bad[:10])


def test_reproduces_the_runtimes_linking_j_and_sentences(piper_joe) -> None:
    frontend = PiperPhonemeFrontend(piper_joe.config.phoneme_id_map)
    assert piper_sentences("He ate four.") == ["hiːʲ ˈeɪt fˈɔːɹ."]  # espeak-ng 1.52 (1.51: fˈoːɹ), linking ʲ
    # "Dr." ends a sentence; a spaced dash is a ";", an ellipsis ends a clause with no mark (and no space)
    assert piper_sentences("Dr. Smith is here — today... or not?") == ["dˈɑːktɚ.", "smˈɪθ ɪz hˈɪɹ; tədˈeɪɔːɹ nˈɑːt?"]
    out = frontend("Dr. Smith. Hi!")
    assert out["sentences"] == piper_ids(piper_joe, "Dr. Smith. Hi!") and len(out["sentences"]) == 3
    assert out["ids"] == frontend.phonemes_to_ids(" ".join(piper_sentences("Dr. Smith. Hi!")))


@pytest.fixture(scope="module")
def joe_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("joe_runtime") / "voice"
    assert convert_cli.main(["joe", str(out)]) == 0
    return out


def test_joe_speaks_as_many_samples_as_piper_tts_at_zero_noise(piper_joe, joe_dir) -> None:
    """Echelon's default CPU backend (its exported graphs on onnxruntime), noise and duration noise 0."""
    from piper.config import SynthesisConfig

    torch.set_num_threads(1)
    pipeline = load_pipeline(joe_dir, ["infer.noise_scale=0", "infer.noise_scale_w=0"])
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, normalize_audio=False)
    texts = SENTENCES[::6]
    assert len(texts) >= 40 and sum(len(piper_sentences(t)) > 1 for t in texts) >= 3  # some of several sentences
    lengths = []
    for text in texts:
        theirs = sum(chunk.audio_float_array.size for chunk in piper_joe.synthesize(text, quiet))
        ours = pipeline.synthesize([text])[0].waveform.size
        lengths.append((text, ours, theirs))
    bad = [f"{t!r}: echelon {o}, piper-tts {p}" for t, o, p in lengths if o != p]
    assert not bad, f"{len(bad)}/{len(texts)} lengths differ:\n" + "\n".join(bad)
