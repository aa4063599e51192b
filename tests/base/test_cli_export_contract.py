"""echelon-export keeps the contract of the other CLIs (issue 44): bad input is one line and exit 2 before
anything is loaded, an existing output is kept unless --overwrite; a voice on Echelon's own front end exports
an .onnx.json from which Piper's framing builds the ids the voice was trained on."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from bins import export as export_cli
from processors.text.frontend import TextFrontend
from processors.text.piper_phonemes import BOS, EOS, PAD, PiperPhonemeFrontend
from tests.models.vits.test_vits_onnx import tiny_checkpoint

TEXTS = ("Hello there, how are you?", "The quick brown fox jumps over the lazy dog.", "One; two: three!")


def _export(capsys, *argv) -> tuple:
    """``echelon-export`` in this process: (exit status, the lines it wrote to stderr)."""
    code = export_cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


def test_vits_without_a_checkpoint_is_one_line(capsys, tmp_path):
    code, lines = _export(capsys, "onnx", "--model_type", "vits", "--out", tmp_path / "v.onnx")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("echelon-export: VITS export needs --ckpt_dir")
    assert not list(tmp_path.iterdir())


def test_speechsr_at_a_rate_it_was_not_released_for_is_one_line(capsys, tmp_path):
    code, lines = _export(capsys, "onnx", "--model_type", "speechsr", "--target_rate", "22050",
                          "--out", tmp_path / "sr.onnx")
    assert (code, lines) == (2, ["echelon-export: target_rate 22050: the bundled SpeechSR releases are 24000 and "
                                 "48000 Hz"])
    assert not list(tmp_path.iterdir())


def test_an_existing_output_is_kept_unless_overwrite(capsys, tmp_path):
    out = tmp_path / "sr24.onnx"
    out.write_bytes(b"an earlier export")
    argv = ["onnx", "--model_type", "speechsr", "--target_rate", "24000", "--out", out]
    assert _export(capsys, *argv) == (2, [f"echelon-export: --out {out} already exists; pass --overwrite to "
                                          "replace it"])
    assert out.read_bytes() == b"an earlier export"
    code, _ = _export(capsys, *argv, "--overwrite")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert code == 0 and meta["model_type"] == "speechsr" and meta["sample_rate"] == "24000"
    code, lines = _export(capsys, "onnx", "--model_type", "speechsr", "--out", tmp_path, "--overwrite")
    assert (code, lines) == (2, [f"echelon-export: --out {tmp_path} is a directory; give the FILE.onnx to write"])


def test_an_echelon_front_end_voice_gets_the_ids_it_was_trained_on_from_pipers_framing(capsys, tmp_path):
    """Piper (piper-tts, piper1) frames a sentence as ^ _ p1 _ ... pn _ $ from the .onnx.json; the map must hold
    the three framing symbols (else KeyError '^') and give exactly Echelon's interspersed ids."""
    root = tiny_checkpoint(tmp_path / "voice", n_speakers=0, gin_channels=0)
    code, _ = _export(capsys, "onnx", "--ckpt_dir", root, "--out", tmp_path / "out" / "voice.onnx")
    voice = json.loads((tmp_path / "out" / "voice.onnx.json").read_text(encoding="utf-8"))
    assert code == 0 and voice["echelon"]["text_frontend"] == "echelon"
    piper = PiperPhonemeFrontend(voice["phoneme_id_map"])  # refuses a map without ^, $ and _
    assert {BOS, EOS, PAD} <= set(voice["phoneme_id_map"])
    front = TextFrontend(add_blank=True)
    for text in TEXTS:
        ours = front(text)
        framed = piper.phonemes_to_ids(ours["cleaned"], text)
        assert framed == ours["ids_blank"] and len(framed) == 2 * len(ours["ids"]) + 1, text


def test_without_blanks_the_piper_format_is_refused_in_one_line(capsys, tmp_path):
    root = tiny_checkpoint(tmp_path / "voice", data={"add_blank": False}, n_speakers=0, gin_channels=0)
    code, lines = _export(capsys, "onnx", "--ckpt_dir", root, "--out", tmp_path / "out" / "voice.onnx")
    assert code == 2 and len(lines) == 1 and "data.add_blank false" in lines[0]
    assert lines[0].startswith("echelon-export: this voice uses Echelon's front end without blanks")
    assert not Path(tmp_path / "out").exists()
