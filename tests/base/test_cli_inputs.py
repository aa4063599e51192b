"""Meaningless input is refused, through echelon-infer (issue 23): one line, non-zero exit, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.base.test_cli_interrupt import joe  # noqa: F401 (module fixture: the converted Piper joe voice)
from tests.helpers import REPO_ROOT


def _infer(*args, stdin=None):
    cmd = [sys.executable, "-m", "bins.infer", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, input=stdin)


def _one_line(run, expected):
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert _said(run) == [f"echelon-infer: {expected}"]


def _said(run):
    """stderr without log records and a library's deprecation warning: what the CLI itself printed."""
    return [line for line in run.stderr.strip().splitlines()
            if not re.match(r"\d{4}-\d\d-\d\d |.*pkg_resources", line)]


@pytest.mark.parametrize("value", ["-1", "0"])
def test_non_positive_length_scale(joe, tmp_path, value):  # noqa: F811
    run = _infer("--ckpt_dir", joe, "--text", "Hello.", "--output_dir", tmp_path, "--length_scale", value)
    _one_line(run, f"infer.length_scale={float(value)}: must be above 0 (multiplies every duration: > 1 speaks "
                   f"slower, < 1 faster)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine")
@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_cuda_on_a_cpu_build(joe, tmp_path, device):  # noqa: F811
    run = _infer("--ckpt_dir", joe, "--text", "Hello.", "--output_dir", tmp_path, "--device", device)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = _said(run)
    assert line.startswith(f"echelon-infer: --device {device}: ") and "use --device cpu" in line


def test_prompt_to_a_voice_without_prompts_and_mixed_inputs(joe, tmp_path):  # noqa: F811
    lines = tmp_path / "lines.txt"
    lines.write_text("a|Hello.\n")
    _one_line(_infer("--ckpt_dir", joe, "--text", "Hi.", "--prompt", lines, "--output_dir", tmp_path / "o"),
              "--prompt: model 'voice' takes no voice prompt")  # the voice's directory, not a Python class
    _one_line(_infer("--ckpt_dir", joe, "--text", "Hi.", "--text_file", lines, "--output_dir", tmp_path / "o"),
              "give one of --text, --text_file, --jobs (got --text and --text_file)")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_unspeakable_text_fails_its_item_unless_dropped_and_stdin_text(joe, tmp_path):  # noqa: F811
    texts = "pizza|I like 🍕🍕 a lot.\njapanese|日本語です\nplain|A plain sentence.\n"
    run = _infer("--ckpt_dir", joe, "--text_file", "-", "--output_dir", tmp_path / "o", "--quiet", stdin=texts)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    out = run.stdout.strip().splitlines()
    assert out[0] == ("pizza: UnspeakableText: the English voice cannot speak '🍕' (SLICE OF PIZZA); remove them or "
                      "pass --drop_unspeakable to leave them out")
    assert out[1].startswith("japanese: UnspeakableText: the English voice cannot speak '日' "
                             "(CJK UNIFIED IDEOGRAPH-65E5)")
    assert out[-1].startswith("1 written, 2 failed: see ")
    assert sorted(p.name for p in (tmp_path / "o").glob("*.wav")) == ["plain.wav"]

    run = _infer("--ckpt_dir", joe, "--text_file", "-", "--output_dir", tmp_path / "d", "--quiet",
                 "--drop_unspeakable", stdin="pizza|I like 🍕🍕 a lot.\n")
    assert run.returncode == 0 and "left out what the English voice cannot speak: '🍕' (SLICE OF PIZZA)" in run.stderr
    short, _ = sf.read(tmp_path / "d" / "pizza.wav")
    assert len(short) > 0.5 * 22050  # the words were spoken


def test_speechsr_names_outputs_by_id_and_says_what_it_converted(tmp_path):
    t = np.arange(48000) / 48000.0
    stereo = 0.3 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32)
    sf.write(tmp_path / "utt_1.wav", stereo, 48000)
    run = _infer("--model_type", "speechsr", "--inputs", tmp_path / "utt_1.wav", "--output_dir", tmp_path / "o",
                 "--target_rate", "24000", "--quiet")
    assert run.returncode == 0, run.stderr
    assert ("utt_1 (" in run.stderr and "2 channels downmixed to mono, resampled from 48000 Hz to the model's "
            "16000 Hz" in run.stderr)
    assert sf.info(tmp_path / "o" / "utt_1.wav").samplerate == 24000  # <id>.wav: echelon-evaluate pairs it
    # outputs named like their inputs: writing into the inputs' own folder would replace them, so it is refused
    before = (tmp_path / "utt_1.wav").read_bytes()
    run = _infer("--model_type", "speechsr", "--inputs", tmp_path / "utt_1.wav", "--output_dir", tmp_path,
                 "--target_rate", "24000", "--overwrite", "--quiet")
    _one_line(run, f"the output for {tmp_path / 'utt_1.wav'} would replace that input file: write to another "
                   "--output_dir")
    assert (tmp_path / "utt_1.wav").read_bytes() == before


def test_help_without_a_pipeline_lists_every_input_and_its_pipelines(capsys):
    from bins import infer

    assert infer.main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--text", "--text_file", "--jobs", "--speaker", "--prompt", "--prompt_text", "--source", "--pairs",
                 "--inputs", "--skip_existing", "--overwrite", "--quiet", "--device"):
        assert f"  {flag} " in out, flag
    tts = next(line for line in out.splitlines() if line.startswith("text-to-speech pipelines ("))
    assert "vits" in tts and "hierspeechpp_tts" in tts
    assert "speech super-resolution pipelines (speechsr" in out and "voice conversion pipelines (hierspeechpp" in out
