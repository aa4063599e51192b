"""The benchmark report: Markdown + a static HTML page, rendered in headless Chromium.

Two "systems" over three real VCTK utterances are scored by the real evaluation (MCD, F0, log-mel L1, with
best/worst figures): ``copy`` returns the recordings, ``narrowband`` the recordings band-limited to 4 kHz.
A third system is listed as skipped. The page must open from disk with its tables, every image decoded,
one audio player per item and input/system whose file loads, and no console error.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from bins.evaluate import evaluate
from evaluation.benchmark.collect import task_from_evaluation
from evaluation.benchmark.report import write_report
from evaluation.benchmark.results import BenchmarkReport, Efficiency, ItemMedia, SystemEntry
from evaluation.runner import EvaluationOptions
from tests.chromium import chromium_binary, visit
from tests.evaluation.conftest import mini_manifest
from tests.helpers import MINI_CORPUS

ITEMS = ("p225_008", "p226_008", "p227_011")
SYSTEMS = ("copy", "narrowband")

PROBE = """
(async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 || a.error ? null : new Promise(done => {
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
    setTimeout(done, 10000);
  })));
  return {
    tables: [...document.querySelectorAll('table')].map(t => t.id),
    results: [...document.querySelectorAll('#results-tts_demo tbody tr')].map(r => r.cells[0].textContent),
    header: [...document.querySelectorAll('#results-tts_demo thead th')].map(h => h.textContent),
    systems: [...document.querySelectorAll('#systems tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
    images: [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
    audio: audios.map(a => [a.getAttribute('src'), a.readyState, a.error ? a.error.code : 0, a.duration]),
  };
})()
"""


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("benchmark_report")
    rows = {Path(r["path"]).stem: r for r in mini_manifest()}
    media = []
    for directory in ("references", *SYSTEMS):
        (root / directory).mkdir()
    for utt in ITEMS:  # the first 2.5 s of each recording keep the test fast
        wav, sr = sf.read(MINI_CORPUS / rows[utt]["path"], dtype="float32")
        reference = root / "references" / f"{utt}.wav"
        sf.write(reference, wav[: int(2.5 * sr)], sr)
        wav = wav[: int(2.5 * sr)]
        with (root / "test.jsonl").open("a") as handle:
            handle.write(json.dumps({"id": utt, "path": str(reference), "speaker": rows[utt]["speaker"],
                                     "text": rows[utt]["transcript"], "duration": 2.5, "sample_rate": sr}) + "\n")
        shutil.copy(reference, root / "copy" / f"{utt}.wav")
        narrow = soxr.resample(soxr.resample(wav, sr, 8000), 8000, sr)
        sf.write(root / "narrowband" / f"{utt}.wav", narrow, sr)
        media.append(ItemMedia(utt, rows[utt]["transcript"], reference=str(reference),
                               outputs={s: root / s / f"{utt}.wav" for s in SYSTEMS}))
    evaluate({s: root / s for s in SYSTEMS}, root / "test.jsonl", root / "eval", None,
             EvaluationOptions(metrics=("mcd", "f0", "log_mel_l1"), f0_method="dio"))
    efficiency = {"copy": Efficiency(0.5, 0.4, 5.0, 3), "narrowband": Efficiency(2.0, 3.0, 5.0, 3)}
    task = task_from_evaluation("tts_demo", "Demo task", "Recordings and their 4 kHz versions.", root / "eval",
                                media, efficiency, excluded={"p228_001": "not produced by narrowband"})
    systems = [SystemEntry("copy", "copy", True, parameters=0, peak_memory_mb=210.0, tasks=["tts_demo"]),
               SystemEntry("narrowband", "soxr", True, parameters=1_500_000, peak_memory_mb=230.0, tasks=["tts_demo"]),
               SystemEntry("valle", "valle", False, reason="checkpoint exp/valle not found")]
    write_report(BenchmarkReport("Echelon benchmark (test)", ["3 VCTK items", "1 thread"], systems, [task],
                                 created="2026-01-01"), root / "report")
    return root / "report"


def test_markdown_has_the_tables_and_existing_figures(report_dir):
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| system | pipeline | status |" in text and "skipped: checkpoint exp/valle not found" in text
    table = [line for line in text.splitlines() if line.startswith("| copy |") or line.startswith("| narrowband |")]
    assert len(table) == 4  # both systems in the systems table and in the results table
    assert "RTF wall ↓" in text and "| 0.100 | 0.080 |" in text  # copy: 0.5 s wall, 0.4 s CPU for 5 s of audio
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert figures and all((report_dir / f).is_file() for f in figures)
    assert "p228_001 (not produced by narrowband)" in text


def test_report_numbers_are_the_evaluation_numbers(report_dir):
    summary = json.loads((report_dir.parent / "eval" / "summary.json").read_text())["systems"]
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    for system in SYSTEMS:
        mcd = summary[system]["metrics"]["mcd"]
        assert f"{mcd['mean']:.2f}" in page
    assert summary["copy"]["metrics"]["mcd"]["mean"] == 0.0 < summary["narrowband"]["metrics"]["mcd"]["mean"]


@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium(report_dir):
    seen = visit(report_dir / "report.html", PROBE)
    assert seen.console_errors == []
    page = seen.value
    assert {"systems", "results-tts_demo", "audio-tts_demo"} <= set(page["tables"])
    assert page["results"] == list(SYSTEMS)
    assert any(h.startswith("MCD dB") for h in page["header"]) and "RTF CPU ↓" in page["header"]
    assert any(row[0] == "valle" and "skipped: checkpoint exp/valle not found" in row[2] for row in page["systems"])
    images = page["images"]
    # distributions of mcd, f0 and log-mel columns + best and worst figure of each system
    assert len(images) >= 4 + 2 * len(SYSTEMS) and all(ok for _, ok in images), images
    assert all(not src.startswith(("/", "file:", "http")) for src, _ in images), "paths must be relative"
    audio = page["audio"]
    assert len(audio) == len(ITEMS) * (1 + len(SYSTEMS))  # the reference and every system, per item
    for src, ready, error, duration in audio:
        assert error == 0 and ready >= 1 and abs(duration - 2.5) < 0.01, (src, ready, error, duration)
