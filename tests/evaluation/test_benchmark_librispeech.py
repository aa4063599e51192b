"""The LibriSpeech test-clean 4-10 s protocol on a real LibriSpeech layout (tests/data/librispeech: 8 clips of
4 speakers, 2.1 to 4.3 s, so one of them lies in 4-10 s)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from evaluation.benchmark.config import ProtocolConfig
from evaluation.benchmark.librispeech import main, scan, write_protocol
from evaluation.benchmark.protocol import build_protocol
from tests.evaluation.conftest import LIBRISPEECH


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "LibriSpeech"
    clips = sorted(LIBRISPEECH.glob("*.flac"))
    for chapter in sorted({c.stem.rsplit("-", 1)[0] for c in clips}):
        speaker, number = chapter.split("-")
        folder = root / "test-clean" / speaker / number
        folder.mkdir(parents=True)
        lines = []
        for audio in [c for c in clips if c.stem.startswith(chapter + "-")]:
            shutil.copy(audio, folder / audio.name)
            lines.append(f"{audio.stem} WORDS OF UTTERANCE {audio.stem[-2:]}")
        (folder / f"{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_pool_and_the_4_to_10_second_test_set(corpus, tmp_path):
    paths = write_protocol(corpus, tmp_path / "proto")
    pool = [json.loads(line) for line in paths["pool"].read_text().splitlines()]
    test = [json.loads(line) for line in paths["test"].read_text().splitlines()]
    assert len(pool) == 8 and [r["id"] for r in pool] == sorted(r["id"] for r in pool)
    durations = {r["id"]: sf.info(r["path"]).duration for r in pool}
    expected = sorted(i for i, d in durations.items() if 4.0 <= d <= 10.0)
    assert [r["id"] for r in test] == expected == ["2033-164914-0004"]  # 4.3 s; the others are 2.1-3.5 s
    assert paths["ids"].read_text().split() == expected
    assert test[0]["speaker"] == "2033" and test[0]["text"] == "WORDS OF UTTERANCE 04"


def test_protocol_lists_from_it(corpus, tmp_path):
    paths = write_protocol(corpus, tmp_path / "proto")
    cfg = ProtocolConfig(manifest=str(paths["test"]), pool=[str(paths["pool"])],
                         tasks=["tts_cross_sentence", "tts_continuation"], seed=3)
    jobs, skipped = build_protocol(cfg, tmp_path / "lists")
    test_ids = paths["ids"].read_text().split()
    pool = {json.loads(line)["id"]: json.loads(line) for line in paths["pool"].read_text().splitlines()}
    cross = jobs["tts_cross_sentence"]
    assert [j.id for j in cross] == test_ids
    for job in cross:  # another utterance of the same speaker, with its own transcript
        prompt_id = Path(job.prompt).stem
        assert prompt_id != job.id and pool[prompt_id]["speaker"] == job.speaker
        assert job.prompt_text == pool[prompt_id]["text"]
    continuation = jobs["tts_continuation"]
    assert [j.id for j in continuation] == test_ids and not skipped
    for job in continuation:
        assert sf.info(job.prompt).frames == 3 * 16000 and job.prompt_text == job.text == pool[job.id]["text"]


def test_bad_layouts_are_named(tmp_path, corpus, capsys):
    assert main(["--root", str(tmp_path / "nothing"), "--out_dir", str(tmp_path / "o")]) == 2
    assert "test-clean not found" in capsys.readouterr().err
    trans = next(corpus.rglob("2033-164914.trans.txt"))
    trans.write_text(trans.read_text() + "2033-164914-0099\n")
    with pytest.raises(ValueError, match=r"2033-164914.trans.txt:3: expected"):
        scan(corpus)
