"""Every Echelon CLI answers a misspelled option with one line naming the closest one (issue 44): exit 2, no
usage block, no traceback; also when the misspelling left a required option missing, and for a bad choice."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT
from tests.models.vits.test_vits_onnx import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("cli_options") / "vits", n_speakers=0, gin_channels=0)


def _refused(capsys, module: str, argv) -> str:
    """``bins.<module>.main(argv)`` exits 2 with exactly one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"bins.{module}").main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and "usage:" not in err
    (line,) = err.strip().splitlines()
    return line


CASES = [  # (CLI module, its program name, valid arguments, a misspelled option (+ value), what it should suggest)
    ("export", "echelon-export", ["onnx", "--model_type", "speechsr", "--out", "x.onnx"], ["--overwite"],
     "--overwrite"),
    ("benchmark", "echelon-benchmark", ["b.json5", "--out_dir", "o"], ["--skip_exsting"], "--skip_existing"),
    ("evaluate", "echelon-evaluate", ["--system", "a=b", "--manifest", "m", "--out_dir", "o"], ["--metrcs", "wer"],
     "--metrics"),
    ("convert_piper", "echelon-convert-piper", ["joe", "out"], ["--hlep"], "--help"),
    ("serve", "echelon-serve", ["--ckpt_dir", "x"], ["--prot", "8000"], "--port"),
    ("preprocess", "echelon-preprocess", ["--dataset", "mini", "--data_dir", "d", "--out_dir", "o"], ["--sed", "1"],
     "--seed"),
    ("extract_features", "extract_features", ["--manifest", "m", "--out_dir", "o"], ["--featurs", "mel"],
     "--features"),
    ("vc", "bins.vc", ["--ckpt_dir", "x", "--source", "a.wav", "--output_dir", "o"], ["--noise_sacle", "0.5"],
     "--noise_scale"),
    ("models", "echelon-models", [], ["--jsn"], "--json"),
]


@pytest.mark.parametrize("module, prog, argv, wrong, suggestion", CASES, ids=[c[0] for c in CASES])
def test_a_misspelled_option_names_the_closest(capsys, module, prog, argv, wrong, suggestion):
    line = _refused(capsys, module, argv + wrong)
    assert line == f"{prog}: unrecognized option {wrong[0]} (did you mean {suggestion}?); see {prog} --help"


def test_infer_suggests_a_pipeline_setting(capsys, tiny_vits, tmp_path):
    """echelon-infer adds the pipeline's own settings to its options; a misspelled one is found among them."""
    line = _refused(capsys, "infer", ["--ckpt_dir", tiny_vits, "--text", "Hi.", "--output_dir", tmp_path / "o",
                                      "--lenght_scale", "1.2"])
    assert line.startswith("echelon-infer: unrecognized option --lenght_scale (did you mean --length_scale?)")
    assert not (tmp_path / "o").exists()


def test_the_misspelling_is_named_when_it_left_a_required_option_missing(capsys):
    line = _refused(capsys, "export", ["onnx", "--model_type", "speechsr", "--outt", "x.onnx"])
    assert line.startswith("echelon-export: unrecognized option --outt (did you mean --out?)")


def test_a_bad_choice_names_the_closest_choice(capsys):
    line = _refused(capsys, "evaluate", ["--system", "a=b", "--manifest", "m", "--out_dir", "o", "--asr", "whispr"])
    assert "argument --asr: invalid choice: 'whispr' (did you mean 'whisper'? choose from " in line


def test_the_installed_command_answers_the_same_way():
    """The console script path (a real process), not only main(): one line on stderr, exit 2."""
    run = subprocess.run([sys.executable, "-m", "bins.export", "onnx", "--ckpt_dir", "x", "--out", "y.onnx",
                          "--quantise", "int8"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        "echelon-export: unrecognized option --quantise (did you mean --quantize?); see echelon-export --help"]
