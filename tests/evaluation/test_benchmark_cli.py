"""echelon-benchmark end to end on the mini corpus: a real system (espeak-ng), one that is not available,
per-system processes with timing and memory, evaluation identical to echelon-evaluate, report in Chromium."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from bins import benchmark as benchmark_cli
from bins import evaluate as evaluate_cli
from evaluation.benchmark.protocol import Job
from evaluation.benchmark.systems import run_system
from tests.chromium import chromium_binary, visit
from tests.egs.test_eval_lists import mini_manifests

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmark_cli")
    test = root / "manifests" / "test.jsonl"
    mini_manifests(root / "manifests")
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    test.write_text("".join(json.dumps(r) + "\n" for r in rows if r["text"] and "/vctk/" in r["path"]))
    (root / "bench.json5").write_text("""{ // systems: one that runs, one whose pipeline is not in this checkout
      title: "mini benchmark (test)",
      protocol: {manifest: "manifests/test.jsonl", tasks: ["tts", "tts_continuation", "vc"], max_items: 2},
      evaluation: {metrics: ["wer", "dnsmos"], asr: "pocketsphinx"},
      systems: [
        {name: "espeak", spec: {pipeline: "espeak_ng", infer: {rate: 170}}},
        {name: "future", spec: {pipeline: "not_landed_yet"}},
      ],
    }""")
    out = root / "out"
    assert benchmark_cli.main([str(root / "bench.json5"), "--out_dir", str(out)]) == 0
    return root, out


def _rows(path: Path):
    with path.open(newline="") as handle:
        return {(r["system"], r["id"]): r for r in csv.DictReader(handle)}


def test_systems_run_or_are_listed_with_a_reason(run):
    _, out = run
    espeak = json.loads((out / "systems" / "espeak" / "result.json").read_text())
    assert espeak["status"] == "ok" and espeak["pipeline"] == "espeak_ng" and list(espeak["tasks"]) == ["tts"]
    tts = espeak["tasks"]["tts"]
    assert len(tts["outputs"]) == 2 and tts["failures"] == {}
    assert tts["audio_seconds"] > 1.0 and tts["wall_seconds"] > 0 and tts["cpu_seconds"] > 0  # espeak-ng counted
    assert espeak["peak_memory_mb"] > 50
    assert not (out / "systems" / "future").exists(), "an unknown pipeline is skipped before starting a process"
    report = (out / "report.md").read_text()
    assert "skipped: not available: no pipeline named 'not_landed_yet'" in report
    assert "Task vc: no available system supports it" in report
    assert [json.loads(line)["id"] for line in (out / "protocol" / "tts.jsonl").read_text().splitlines()]


def test_metrics_agree_with_echelon_evaluate_alone(run, tmp_path):
    _, out = run
    eval_dir = out / "eval" / "tts"
    assert evaluate_cli.main(["--system", f"espeak={out / 'systems' / 'espeak' / 'tts'}", "--manifest",
                              str(eval_dir / "manifest.jsonl"), "--metrics", "wer", "--asr", "pocketsphinx",
                              "--out_dir", str(tmp_path / "alone"), "--no_plots"]) == 0
    alone = _rows(tmp_path / "alone" / "per_utterance.csv")
    bench = {k: r for k, r in _rows(eval_dir / "per_utterance.csv").items() if k[0] == "espeak"}  # + ground_truth
    assert set(alone) == set(bench) and len(alone) == 2
    for key, row in alone.items():
        assert row["hypothesis"] == bench[key]["hypothesis"]
        assert math.isclose(float(row["wer"]), float(bench[key]["wer"])), key


def test_a_missing_checkpoint_is_a_skip_reason(tmp_path):
    result = run_system("vits", str(tmp_path / "no_such_checkpoint"), [], 0, {"tts": [Job("a", "hello")]},
                        tmp_path / "systems", threads=1, device="cpu")
    assert result.status == "skipped" and result.reason.startswith("missing weights") and not result.tasks


@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_opens_in_chromium(run):
    _, out = run
    seen = visit(out / "report.html", "[...document.querySelectorAll('audio')].map(a => [a.readyState, !!a.error])"
                                      ".concat([...document.images].map(i => [i.naturalWidth > 0 ? 4 : 0, false]))")
    assert seen.console_errors == []
    assert len(seen.value) >= 2 + 2 and all(ready >= 1 and not error for ready, error in seen.value), seen.value


def test_multi_speaker_systems_speak_as_the_test_speaker_when_they_know_it():
    from evaluation.benchmark.systems import speaker_for

    known = ("ann", "bob", "cy")
    assert speaker_for(Job("x", "hi", speaker="bob"), known, 0) == "bob"
    assert [speaker_for(Job(str(i), "hi", speaker="zed"), known, i) for i in range(4)] == ["ann", "bob", "cy", "ann"]
    assert speaker_for(Job("x", "hi", speaker="bob"), (), 0) is None


def test_benchmark_file_placeholders_and_errors(tmp_path):
    from evaluation.benchmark.config import read_benchmark_config
    from utils.config import ConfigError

    path = tmp_path / "b.json5"
    path.write_text('{protocol: {manifest: "m.jsonl"}, systems: [{name: "v", spec: "@EXP_ROOT@/vits_@DATASET@"},'
                    ' {name: "e", spec: {pipeline: "espeak_ng", components: {x: "rel/dir"}}}]}')
    cfg = read_benchmark_config(path, [], {"EXP_ROOT": "/data/exp", "DATASET": "mini"})
    assert cfg.systems[0].spec == "/data/exp/vits_mini"
    assert cfg.systems[1].spec["components"]["x"] == str(tmp_path / "rel" / "dir")  # relative to the file
    assert cfg.protocol.manifest == str(tmp_path / "m.jsonl")
    with pytest.raises(ConfigError, match="@DATASET@ has no value"):
        read_benchmark_config(path, [], {"EXP_ROOT": "/data/exp"})
    with pytest.raises(ConfigError, match="did you mean 'protocol.max_items'"):
        read_benchmark_config(path, ["protocol.max_item=3"], {"EXP_ROOT": "x", "DATASET": "y"})
    path.write_text('{protocol: {manifest: "m.jsonl", tasks: ["tts", "sing"]}}')
    with pytest.raises(ConfigError, match="unknown task"):
        read_benchmark_config(path)
    assert benchmark_cli.main([str(path), "--out_dir", str(tmp_path / "o")]) == 2
