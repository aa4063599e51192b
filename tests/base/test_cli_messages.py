"""Messages read as English (issue 44): counted nouns and verbs agree with their count ("1 item", "exists"), and
phonemizer's pkg_resources deprecation notice no longer reaches a TTS run's output (other warnings still do)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from models.base.inference import InferenceError, Item, plan_outputs
from tests.helpers import REPO_ROOT
from tests.models.vits.test_vits_onnx import tiny_checkpoint
from utils.progress import Progress
from utils.wording import agree, plural

NOTICE = "pkg_resources is deprecated"


def test_counted_nouns_and_verbs_agree():
    assert [plural(n, "item") for n in (0, 1, 2)] == ["0 items", "1 item", "2 items"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"
    assert (agree(1, "exists", "exist"), agree(2, "exists", "exist")) == ("exists", "exist")


@pytest.mark.parametrize("total, expected", [(1, "infer: 1 item to do"), (3, "infer: 3 items to do")])
def test_the_progress_line_counts_in_english(total, expected):
    stream = io.StringIO()
    with Progress(total, "infer", unit="items", stream=stream, interval=60):
        pass
    assert stream.getvalue().splitlines()[0] == expected


def test_existing_outputs_are_named_with_the_verb_that_agrees(tmp_path):
    items = [Item("a", None), Item("b", None)]
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(InferenceError, match=r"a\.wav already exists; pass --skip_existing to keep it and do the "
                                             r"rest, or --overwrite to replace it$"):
        plan_outputs(items, tmp_path, overwrite=False)
    (tmp_path / "b.wav").write_bytes(b"x")
    with pytest.raises(InferenceError, match=r"a\.wav and 1 more already exist; pass --skip_existing to keep them"):
        plan_outputs(items, tmp_path, overwrite=False)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "default", "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_phonemizers_notice_is_silenced_and_other_warnings_are_not():
    plain = _python("import phonemizer.backend")
    assert NOTICE in plain.stderr  # the notice this is about (without Echelon's front end imported first)
    ours = _python("from processors.text.g2p import phonemize; print(phonemize('hello'));"
                   "import warnings; warnings.warn('a warning of our own')")
    assert ours.returncode == 0 and ours.stdout.strip() and NOTICE not in ours.stderr
    assert "UserWarning: a warning of our own" in ours.stderr


def test_a_tts_run_prints_no_pkg_resources_notice(tmp_path):
    voice = tiny_checkpoint(tmp_path / "voice", n_speakers=0, gin_channels=0)
    run = subprocess.run([sys.executable, "-m", "bins.infer", "--ckpt_dir", str(voice), "--text", "Hello there.",
                          "--output_dir", str(tmp_path / "out"), "--quiet"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "tts_0000.wav").is_file() and "pkg_resources" not in run.stderr
