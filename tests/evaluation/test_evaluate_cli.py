"""bins/evaluate.py end to end: two systems side by side on real VCTK speech, report files and errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bins.evaluate import evaluate, main
from evaluation.runner import EvaluationOptions
from tests.evaluation.conftest import mini_manifest
from tests.helpers import MINI_CORPUS

METRICS = ("wer", "sim", "f0", "mcd", "log_mel_l1", "mrstft")


@pytest.fixture(scope="module")
def setup_dirs(tmp_path_factory):
    """Manifest of two VCTK utterances; system 'copy' = the references, 'other' = another speaker + silence."""
    root = tmp_path_factory.mktemp("eval_cli")
    rows = {Path(r["path"]).stem: r for r in mini_manifest() if r["path"].startswith("vctk/")}
    chosen = {"p225_008": "p226_008", "p227_011": "p228_011"}  # reference -> a different speaker's take
    with (root / "test.jsonl").open("w") as handle:
        for utt_id in chosen:
            row = rows[utt_id]
            handle.write(json.dumps({"id": utt_id, "path": str(MINI_CORPUS / row["path"]), "speaker": row["speaker"],
                                     "text": row["transcript"], "duration": float(row["duration"]),
                                     "sample_rate": int(row["sr"])}) + "\n")
    prompts = {u: str(MINI_CORPUS / rows[f"{u.split('_')[0]}_016"]["path"]) for u in chosen}
    (root / "prompts.json").write_text(json.dumps(prompts))
    (root / "copy").mkdir()
    (root / "other").mkdir()
    for utt_id, other in chosen.items():
        shutil.copy(MINI_CORPUS / rows[utt_id]["path"], root / "copy" / f"{utt_id}.wav")
        shutil.copy(MINI_CORPUS / rows[other]["path"], root / "other" / f"{utt_id}.wav")
    sf.write(root / "other" / "p227_011.wav", np.zeros(16000, dtype=np.float32), 16000)  # a silent output
    return root


def test_two_systems_side_by_side(setup_dirs) -> None:
    root = setup_dirs
    out = root / "report"
    options = EvaluationOptions(metrics=METRICS, f0_method="dio")
    payload = evaluate({"copy": root / "copy", "other": root / "other"}, root / "test.jsonl", out,
                       root / "prompts.json", options)
    with (out / "per_utterance.csv").open() as handle:
        rows = {(r["system"], r["id"]): r for r in csv.DictReader(handle)}
    assert set(rows) == {(s, u) for s in ("copy", "other") for u in ("p225_008", "p227_011")}
    copy_row = rows[("copy", "p225_008")]
    assert float(copy_row["mcd"]) == 0.0 and float(copy_row["f0_pearson"]) == pytest.approx(1.0)
    assert float(copy_row["sim_ref"]) == pytest.approx(1.0, abs=1e-5) and float(copy_row["log_mel_l1"]) == 0.0
    silent = rows[("other", "p227_011")]
    assert float(silent["wer"]) == 1.0 and float(silent["sim_o"]) == 0.0 and float(silent["vuv_f1"]) == 0.0
    assert float(silent["mcd"]) > float(rows[("other", "p225_008")]["mcd"]) > 0.0

    summary = json.loads((out / "summary.json").read_text())  # strict JSON: NaN written as null
    systems = summary["systems"]
    assert systems["copy"]["metrics"]["mcd"]["mean"] == 0.0
    assert systems["other"]["metrics"]["sim_ref"]["mean"] < systems["copy"]["metrics"]["sim_ref"]["mean"]
    assert systems["other"]["corpus"]["wer_corpus"]["value"] > systems["copy"]["corpus"]["wer_corpus"]["value"]
    assert systems["copy"]["metrics"]["mcd"]["n"] == 2 and set(payload["systems"]) == {"copy", "other"}

    table = (out / "summary.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| system | n |") and "MCD dB ↓" in lines[0] and "SIM-O ↑" in lines[0]
    assert lines[1].startswith("| copy | 2 |") and lines[2].startswith("| other | 2 |")
    assert " ± " in lines[1]
    plots = sorted(p for files in summary["plots"].values() for p in files)
    assert len(plots) == 4 and all((out / p).stat().st_size > 10_000 for p in plots)
    assert any("worst_p227_011" in p for p in summary["plots"]["other"])  # the silent output is the worst


def test_cli_reports_mismatched_ids(setup_dirs, tmp_path, capsys) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    shutil.copy(setup_dirs / "copy" / "p225_008.wav", gen / "p225_008.wav")
    shutil.copy(setup_dirs / "copy" / "p225_008.wav", gen / "unexpected.wav")
    code = main(["--system", f"bad={gen}", "--manifest", str(setup_dirs / "test.jsonl"), "--out_dir",
                 str(tmp_path / "out"), "--metrics", "mcd"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no generated audio: p227_011" in err and "no manifest entry: unexpected" in err
    assert not (tmp_path / "out").exists()  # nothing scored or written


def test_cli_rejects_unknown_metric(setup_dirs, tmp_path, capsys) -> None:
    code = main(["--system", f"copy={setup_dirs / 'copy'}", "--manifest", str(setup_dirs / "test.jsonl"),
                 "--out_dir", str(tmp_path / "o"), "--metrics", "mcd,utmos"])
    assert code == 2 and "unknown metric utmos" in capsys.readouterr().err


def test_metrics_are_discoverable_through_the_registry() -> None:
    from evaluation.base import Metric
    from utils.registry import get, names

    expected = {"wer", "sim", "dnsmos", "f0", "mcd", "log_mel_l1", "mrstft", "stoi", "pesq"}
    assert expected <= set(names("metric"))
    for name in ("f0", "mcd", "log_mel_l1", "mrstft"):  # the ones that load no model
        metric_cls = get("metric", name)
        assert issubclass(metric_cls, Metric) and metric_cls.name == name and metric_cls.columns
