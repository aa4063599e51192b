"""echelon-benchmark --skip_existing keeps what the earlier run measured (issue 44): the kept items' timings and,
when every item was kept, the peak memory, and says so in the report; its progress line counts the kept items
as done; kept items with no earlier timing are named in the report instead of a silent "n/a"."""

from __future__ import annotations

import json
import shutil

import pytest

from bins import benchmark as benchmark_cli
from tests.evaluation.test_benchmark_cli import run  # noqa: F401 (module fixture: one espeak-ng benchmark)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _copy(run, tmp_path):  # noqa: F811
    """The fixture's benchmark folder, copied (links kept): each test reruns its own copy."""
    root, out = run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    return root / "bench.json5", copy


def _result(out):
    return json.loads((out / "systems" / "espeak" / "result.json").read_text(encoding="utf-8"))


def _rtf_cells(md: str, system: str):
    """The two RTF cells (wall, CPU) of ``system``'s row in the report's TTS table."""
    table = md[md.index("## TTS without prompt"):]
    row = next(line for line in table.splitlines() if line.startswith(f"| {system} |"))
    return [cell.strip() for cell in row.strip("|").split("|")][-2:]


def test_every_item_kept_reuses_the_earlier_timings_and_peak_memory(run, tmp_path, capfd):  # noqa: F811
    bench, out = _copy(run, tmp_path)
    earlier = _result(out)
    first_md = (out / "report.md").read_text(encoding="utf-8")
    assert benchmark_cli.main([str(bench), "--out_dir", str(out), "--skip_existing"]) == 0
    assert "espeak tts: 0 items to do (2 already done)" in capfd.readouterr().err
    again, before = _result(out), earlier["tasks"]["tts"]
    tts = again["tasks"]["tts"]
    assert tts["kept"] == 2 and tts["reused_timings"] == 2 and tts["untimed"] == 0
    for key in ("wall_seconds", "cpu_seconds", "audio_seconds"):
        assert tts[key] == pytest.approx(before[key]) and tts[key] > 0
    assert again["peak_memory_mb"] == earlier["peak_memory_mb"] and again["peak_memory_reused"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert _rtf_cells(md, "espeak") == _rtf_cells(first_md, "espeak") and "n/a" not in _rtf_cells(md, "espeak")
    assert "espeak, task tts: the RTF includes 2 items of 2 timed by an earlier run of this out_dir" in md
    assert "espeak: every item was kept (--skip_existing): peak memory measured by the earlier run" in md


def test_kept_items_without_an_earlier_timing_are_named_in_the_report(run, tmp_path):  # noqa: F811
    bench, out = _copy(run, tmp_path)
    older = _result(out)
    del older["tasks"]["tts"]["timings"]  # a result written before per-item timings were kept
    (out / "systems" / "espeak" / "result.json").write_text(json.dumps(older), encoding="utf-8")
    assert benchmark_cli.main([str(bench), "--out_dir", str(out), "--skip_existing", "--quiet"]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert _rtf_cells(md, "espeak") == ["n/a", "n/a"]
    assert "espeak, task tts: 2 kept items of 2 have no timing from an earlier run: RTF n/a" in md
