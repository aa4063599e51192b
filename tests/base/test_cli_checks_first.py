"""Cheap checks come before slow work (issue 44): echelon-infer refuses clashing or missing inputs and an output
folder that is a file before loading the model, echelon-convert-piper refuses its output folder before
converting, echelon-serve refuses a busy port before loading (and warming) any model."""

from __future__ import annotations

import socket

import pytest

from bins import convert_piper as convert_cli
from bins import infer as infer_cli
from bins import serve as serve_cli
from models.base import pipeline as pl
from models.tts.vits import piper
from tests.models.vits.test_vits_onnx import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("checks_first") / "vits", n_speakers=0, gin_channels=0)


@pytest.fixture
def loads(monkeypatch):
    """Records every model load that reaches the pipeline builder (and stops it there)."""
    calls = []

    def build(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(pl, "build_pipeline", build)
    return calls


def _refused(capsys, main, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    return line


def test_infer_refuses_text_with_text_file_before_loading(capsys, loads, tiny_vits, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("a|Hello.\n")
    line = _refused(capsys, infer_cli.main, ["--ckpt_dir", tiny_vits, "--text", "Hi.", "--text_file", lines,
                                             "--output_dir", tmp_path / "o"])
    assert line == "echelon-infer: give one of --text, --text_file, --jobs (got --text and --text_file)"
    assert loads == [] and not (tmp_path / "o").exists()


def test_infer_refuses_a_missing_text_file_before_loading(capsys, loads, tiny_vits, tmp_path):
    line = _refused(capsys, infer_cli.main, ["--ckpt_dir", tiny_vits, "--text_file", tmp_path / "nope.txt",
                                             "--output_dir", tmp_path / "o"])
    assert line == f"echelon-infer: text file not found: {tmp_path / 'nope.txt'}" and loads == []


def test_infer_refuses_an_output_dir_that_is_a_file_before_loading(capsys, loads, tiny_vits, tmp_path):
    (tmp_path / "o").write_text("a file")
    line = _refused(capsys, infer_cli.main, ["--ckpt_dir", tiny_vits, "--text", "Hi.", "--output_dir", tmp_path / "o"])
    assert line.startswith(f"echelon-infer: --output_dir {tmp_path / 'o'}: ") and "is a file" in line
    assert loads == []


def test_infer_reaches_the_load_when_the_options_are_good(loads, tiny_vits, tmp_path):
    """The control: the same options without the clash get as far as loading the model (the tripwire works)."""
    with pytest.raises(AssertionError, match="the model was loaded"):
        infer_cli.main(["--ckpt_dir", str(tiny_vits), "--text", "Hi.", "--output_dir", str(tmp_path / "o")])
    assert len(loads) == 1


@pytest.fixture
def conversions(monkeypatch):
    """Records every Piper conversion that starts (and stops it there)."""
    calls = []

    def build_from_piper(path):
        calls.append(path)
        raise AssertionError("the voice was converted")

    monkeypatch.setattr(piper, "build_from_piper", build_from_piper)
    return calls


@pytest.mark.parametrize("occupied", ["file", "non-empty folder"])
def test_convert_piper_refuses_its_output_before_converting(capsys, conversions, tmp_path, occupied):
    out = tmp_path / "joe"
    if occupied == "file":
        out.write_text("x")
    else:
        out.mkdir()
        (out / "kept.txt").write_text("x")
    line = _refused(capsys, convert_cli.main, ["joe", out])
    expected = "is a file" if occupied == "file" else "exists and is not empty"
    assert line == f"echelon-convert-piper: output directory {out} {expected}" and conversions == []


def test_convert_piper_into_an_empty_folder_reaches_the_conversion(conversions, tmp_path):
    (tmp_path / "joe").mkdir()
    with pytest.raises(AssertionError, match="the voice was converted"):
        convert_cli.main(["joe", str(tmp_path / "joe")])
    assert len(conversions) == 1


def test_serve_refuses_a_busy_port_before_loading_any_model(capsys, tmp_path):
    """The checkpoint does not exist: had serve loaded it first, the line would say so instead (exit 2 too)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _refused(capsys, serve_cli.main, ["--ckpt_dir", tmp_path / "no_such_voice", "--port", port])
    assert line.startswith(f"echelon-serve: cannot listen on --host 127.0.0.1 --port {port}: 127.0.0.1:{port}: ")
    assert "in use" in line
