"""processors.data.recordings: recordings as people have them -> checked, split, normalised utterances.

Real clips of the bundled mini corpus, written in other formats, rates and channel counts, glued into a long
take, silenced, clipped or replaced by noise and music; the recogniser is the installed Whisper tiny.en."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from processors.data.recordings import (RecordingSettings, audio_candidates, check_take, normalise_loudness,
                                        prepare_recordings, read_transcripts, split_on_pauses)
from tests.helpers import MINI_CORPUS

RATE = 22050


def _clip(name: str) -> tuple:
    wav, sr = sf.read(str(MINI_CORPUS / "vctk" / "p225" / name), dtype="float32")
    return wav, sr


def _transcript(name: str) -> str:
    import csv

    rows = csv.DictReader((MINI_CORPUS / "manifest.csv").open(encoding="utf-8"))
    return next(r["transcript"] for r in rows if r["path"].endswith(name))


@pytest.fixture(scope="module")
def whisper():
    from finetune.data import WhisperTranscriber, word_error_rate

    return WhisperTranscriber("tiny.en", threads=1), word_error_rate


def test_checks_name_silence_clipping_and_noise():
    settings = RecordingSettings()
    wav, sr = _clip("p225_003.wav")
    assert check_take(wav, sr, settings) is None
    assert "silent" in check_take(np.zeros(sr * 3, np.float32), sr, settings)
    clipped = np.clip(wav * 40, -1, 1)
    assert "clipped" in check_take(clipped, sr, settings)
    noise = np.random.default_rng(0).normal(0, 0.1, sr * 4).astype(np.float32)
    assert "not speech" in check_take(noise, sr, settings)
    t = np.arange(sr * 4) / sr  # a sustained chord: tonal, loud, no speech
    chord = (0.2 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))).astype(np.float32)
    assert "not speech" in check_take(chord, sr, settings)


def test_long_take_is_cut_at_its_pauses():
    pieces = [_clip(n)[0] for n in ("p225_003.wav", "p225_008.wav", "p225_011.wav")]
    sr = _clip("p225_003.wav")[1]
    gap = np.zeros(int(1.5 * sr), np.float32)
    take = np.concatenate([pieces[0], gap, pieces[1], gap, pieces[2]])
    ranges = split_on_pauses(take, sr, RecordingSettings(max_utterance_seconds=8.0))
    assert len(ranges) == 3
    bounds = np.cumsum([0] + [p.size + gap.size for p in pieces])
    for (start, end), lo, piece in zip(ranges, bounds, pieces):
        assert lo - sr * 0.1 <= start and end <= lo + piece.size + sr * 0.1
    # no pause at all: cut below the limit anyway
    long_one = np.concatenate(pieces)
    assert all((e - s) <= 4.0 * sr for s, e in split_on_pauses(long_one, sr, RecordingSettings(max_utterance_seconds=4.0)))


def test_loudness_is_normalised_on_the_speech():
    wav, _ = _clip("p225_008.wav")
    quiet = normalise_loudness(wav * 0.05, -20.0)
    loud = normalise_loudness(wav * 0.8, -20.0)
    np.testing.assert_allclose(quiet, loud, rtol=1e-4, atol=1e-6)
    assert np.max(np.abs(normalise_loudness(wav, -3.0))) <= 0.95 + 1e-6


def test_transcripts_from_metadata_and_side_files(tmp_path):
    (tmp_path / "metadata.csv").write_text("a|Raw text 1.|Normalised text one.\nb|Only raw.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.lab").write_text("  side   file \n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Side file wins.", encoding="utf-8")
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("not audio")
    assert read_transcripts(tmp_path) == {"a": "Normalised text one.", "b": "Side file wins.", "c": "side file"}
    assert [p.name for p in audio_candidates(tmp_path)] == ["a.wav"]


def test_a_folder_as_people_have_it(tmp_path, whisper):
    transcribe, disagreement = whisper
    names = ["p225_003.wav", "p225_008.wav", "p225_011.wav", "p225_016.wav"]
    wav0, sr = _clip(names[0])
    sf.write(str(tmp_path / "take1.flac"), wav0, sr)  # flac, given transcript
    (tmp_path / "take1.txt").write_text(_transcript(names[0]), encoding="utf-8")
    wav1, _ = _clip(names[1])  # stereo ogg at 44.1 kHz, no transcript: Whisper
    from processors.audio import resample

    up = resample(wav1, sr, 44100)
    sf.write(str(tmp_path / "take2.ogg"), np.stack([up, 0.5 * up], axis=1), 44100)
    wav2, _ = _clip(names[2])  # mp3 with a wrong transcript: skipped
    sf.write(str(tmp_path / "take3.mp3"), wav2, sr)
    (tmp_path / "take3.txt").write_text("Completely different words about a purple elephant eating soup.")
    sf.write(str(tmp_path / "silence.wav"), np.zeros(sr * 2, np.float32), sr)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    out = prepare_recordings(tmp_path, RATE, transcribe, disagreement)
    assert out.sample_rate == RATE
    got = {u.id: u for u in out.utterances}
    assert set(got) == {"take1", "take2"}
    assert got["take1"].transcript == "given" and got["take1"].text == _transcript(names[0])
    assert got["take2"].transcript == "asr" and disagreement(_transcript(names[1]), got["take2"].text) < 0.35
    for utt in out.utterances:
        assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1
        peak = np.max(np.abs(utt.audio))
        assert 0.05 < peak <= 0.95 + 1e-6
    reasons = {Path(s.source).name: s.reason for s in out.skipped}
    assert set(reasons) == {"take3.mp3", "silence.wav", "broken.wav"}
    assert reasons["take3.mp3"].startswith("transcript disagrees")
    assert reasons["silence.wav"].startswith("silent")
    assert reasons["broken.wav"].startswith("not audio")


def test_missing_folder_is_one_line(tmp_path, whisper):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        prepare_recordings(tmp_path / "nope", RATE, *whisper)
