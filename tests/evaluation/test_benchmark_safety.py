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
