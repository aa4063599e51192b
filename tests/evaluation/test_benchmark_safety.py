"""echelon-benchmark: an out_dir that holds a benchmark is not overwritten silently, --skip_existing finishes a
run, a benchmark in which no system can run exits 1 with each reason and no report (issue 23)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from bins import benchmark as benchmark_cli
from tests.evaluation.test_benchmark_cli import run  # noqa: F401 (module fixture: one espeak-ng benchmark)
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bins.benchmark", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_existing_out_dir_is_refused_then_finished_with_skip_existing(run, capsys):  # noqa: F811
    root, out = run
    wavs = sorted((out / "systems" / "espeak").rglob("*.wav"))
    stamps = {p: p.stat().st_mtime_ns for p in wavs}
    again = _cli(root / "bench.json5", "--out_dir", out)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip() == (f"echelon-benchmark: --out_dir {out} already holds a benchmark (report.md): "
                                    "--skip_existing to keep its generated audio and do the rest, --overwrite to "
                                    "run everything again")
    removed = wavs[0]
    removed.unlink()
    assert benchmark_cli.main([str(root / "bench.json5"), "--out_dir", str(out), "--skip_existing", "--quiet"]) == 0
    assert removed.is_file()  # the missing one was generated again, the others kept as they were
    assert {p: p.stat().st_mtime_ns for p in wavs if p != removed} == {p: t for p, t in stamps.items() if p != removed}


def test_no_system_can_run_is_exit_1_with_every_reason(run, tmp_path):  # noqa: F811
    root, _ = run
    bench = tmp_path / "none.json5"
    bench.write_text(f"""{{
      protocol: {{manifest: "{root / 'manifests' / 'test.jsonl'}", tasks: ["tts"], max_items: 1}},
      evaluation: {{metrics: ["wer"], asr: "pocketsphinx"}},
      systems: [
        {{name: "future", spec: {{pipeline: "not_landed_yet"}}}},
        {{name: "gone", spec: "{tmp_path / 'no_such_exp'}"}},
      ],
    }}""")
    result = _cli(bench, "--out_dir", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-3] == "echelon-benchmark: no system could run (no report written):"
    assert lines[-2].startswith("  future: not available: no pipeline named 'not_landed_yet'")
    assert lines[-1] == f"  gone: missing weights: {tmp_path / 'no_such_exp'} does not exist"
    assert not (tmp_path / "out" / "report.md").exists()
    device = _cli(bench, "--out_dir", tmp_path / "o2", "--set", "device=gpu")
    assert device.returncode == 2 and len(device.stderr.strip().splitlines()) == 1 and "gpu" in device.stderr


def test_report_with_ground_truth_leaderboard_transcripts_and_caution(run, tmp_path):  # noqa: F811
    root, _ = run
    bench = tmp_path / "gt.json5"
    bench.write_text(f"""{{
      title: "ground truth (test)",
      protocol: {{manifest: "{root / 'manifests' / 'test.jsonl'}", tasks: ["tts"], max_items: 2, ground_truth: true}},
      evaluation: {{metrics: ["wer"], asr: "pocketsphinx"}},
      systems: [{{name: "espeak", spec: {{pipeline: "espeak_ng", infer: {{rate: 170}}}}}}],
    }}""")
    out = tmp_path / "out"
    assert benchmark_cli.main([str(bench), "--out_dir", str(out), "--quiet"]) == 0
    md = (out / "report.md").read_text()
    board = md.index("## Leaderboard")
    assert board < md.index("## Protocol")  # the summary comes first
    line = md[board:].splitlines()[2]
    assert line.startswith("* TTS without prompt (n = 2): WER") and "espeak" in line and "(recordings " in line
    assert "| ground_truth | recordings (upper bound) | ran | tts |" in md  # its row in the systems table
    assert "Continuation prompt" not in md  # no continuation task was run
    assert "left out" not in md.split("## Systems")[0]  # the VC/cross-sentence lists were not asked for
    assert "Caution: only n = 2 items per system" in md
    assert "ground_truth: best" not in md and "ground_truth: worst" not in md  # recordings are never ranked
    page = (out / "report.html").read_text()
    listen = page[page.index('id="audio-tts"'):]
    assert listen.count("<audio") == 4 and listen.count('class="asr">ASR: ') == 4  # 2 items x (truth, espeak)
    assert "<th>ground_truth</th>" in listen and "<th>reference</th>" not in listen


def test_leaderboard_ranks_speaker_similarity_from_the_speaker_metric():
    """The leaderboard ranks the column the speaker metric writes (sim_o, vs the prompt), higher first."""
    from evaluation.benchmark.report import leaderboard_lines
    from evaluation.benchmark.results import BenchmarkReport, TaskReport
    from evaluation.report import summarize
    from utils.registry import get

    metric = get("metric", "sim")(embedder=object())  # no model: only its columns are used here
    assert "sim_o" in metric.columns
    rows = {"a": [{"id": str(i), "sim_o": 0.5 + 0.01 * i} for i in range(3)],
            "b": [{"id": str(i), "sim_o": 0.8 + 0.01 * i} for i in range(3)]}
    task = TaskReport("vc", "Voice conversion", "", summarize(rows, {"sim": metric}), rows, {})
    [line] = leaderboard_lines(BenchmarkReport("t", [], [], [task]))
    assert line.startswith("Voice conversion (n = 3): ") and "↑: b 0.81 > a 0.51" in line
