"""Benchmark systems discovered on disk (evaluation/benchmark/discover.py) from tiny real checkpoint dirs."""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.benchmark.config import read_benchmark_config
from evaluation.benchmark.discover import discover_systems
from models.base.checkpoint import save_checkpoint
from utils.config import ConfigError


def _experiment(path: Path, model_type: str, dataset: str | None = None, steps=(1,)) -> Path:
    """A trained-looking experiment: real (tiny) checkpoints saved by the toolkit's own writer."""
    for step in steps:
        save_checkpoint(path / "checkpoints", step, models={"model": torch.nn.Linear(1, 1)},
                        config={"model_type": model_type})  # fmt: skip
    if dataset is not None:
        (path.parent / "recipe_settings").write_text(f"dataset={dataset}\ndata_dir=/corpus\n")
    return path


def _exp_root(tmp_path: Path) -> Path:
    root = tmp_path / "exp"
    _experiment(root / "vits_mini" / "vits", "vits", "mini", steps=(1, 2))
    _experiment(root / "vits_vctk" / "vits", "vits", "vctk")
    _experiment(root / "wavegrad2_mini" / "wavegrad2", "wavegrad2", "mini")
    _experiment(root / "glow_wavegan_mini" / "stage1", "glow_wavegan_vae", "mini")  # a component, not a pipeline
    _experiment(root / "glow_wavegan_mini" / "stage2", "glow_wavegan", "mini")
    hsp = root / "hierspeechpp_mini"
    _experiment(hsp / "synth", "hierspeechpp", "mini")  # VC on its own
    _experiment(hsp / "ttv", "hierspeechpp_ttv")  # needs a synthesizer: only through the spec
    _experiment(hsp / "speechsr", "speechsr")  # SR: not a benchmark task
    (hsp / "hierspeechpp_tts.pipeline.json5").write_text(
        '{pipeline: "hierspeechpp_tts", components: {ttv: "ttv", synthesizer: "synth"}}')
    (root / "vits_mini" / "vits" / "infer").mkdir()  # outputs are not experiments
    (root / "half_done" / "checkpoints").mkdir(parents=True)  # training started, nothing saved yet
    return root


def test_discovery_finds_every_trained_pipeline_of_the_corpus(tmp_path):
    root = _exp_root(tmp_path)
    found = discover_systems(root, dataset="mini")
    specs = {s.name: s.spec for s in found.systems}
    assert specs == {
        "espeak_ng": {"pipeline": "espeak_ng"},
        "glow_wavegan": str(root / "glow_wavegan_mini" / "stage2"),
        "hierspeechpp": str(root / "hierspeechpp_mini" / "synth"),
        "hierspeechpp_tts": str(root / "hierspeechpp_mini" / "hierspeechpp_tts.pipeline.json5"),
        "vits": str(root / "vits_mini" / "vits"),
        "wavegrad2": str(root / "wavegrad2_mini" / "wavegrad2"),
    }
    why = {Path(where).relative_to(root).as_posix(): reason for where, reason in found.left_out}
    assert why["vits_vctk/vits"] == "dataset vctk, not mini"
    assert "not a registered pipeline" in why["glow_wavegan_mini/stage1"]
    assert "needs component ['synthesizer']" in why["hierspeechpp_mini/ttv"]
    assert "a sr pipeline" in why["hierspeechpp_mini/speechsr"]
    assert why["half_done"] == "no complete checkpoint"


def test_same_pipeline_twice_is_named_by_its_path_and_baselines_are_optional(tmp_path):
    root = _exp_root(tmp_path)
    names = [s.name for s in discover_systems(root, baselines=False).systems]
    assert "vits_mini-vits" in names and "vits_vctk-vits" in names and "vits" not in names
    assert "espeak_ng" not in names


def test_a_benchmark_file_without_systems_discovers_them(tmp_path):
    root = _exp_root(tmp_path)
    (tmp_path / "test.jsonl").write_text("")
    bench = tmp_path / "bench.json5"
    bench.write_text('{protocol: {manifest: "test.jsonl"}, discover: {exp_root: "@EXP_ROOT@", dataset: "@DATASET@"}}')
    cfg = read_benchmark_config(bench, variables={"EXP_ROOT": str(root), "DATASET": "mini"})
    assert "vits" in [s.name for s in cfg.systems] and "vits_vctk-vits" not in [s.name for s in cfg.systems]
    given = read_benchmark_config(bench, variables={"EXP_ROOT": str(root), "DATASET": "mini"},
                                  systems=[f"mine={root / 'vits_vctk' / 'vits'}"])  # fmt: skip
    assert [(s.name, s.spec) for s in given.systems] == [("mine", str(root / "vits_vctk" / "vits"))]
    empty = tmp_path / "empty"
    empty.mkdir()
    bench.write_text('{protocol: {manifest: "test.jsonl"}, discover: {exp_root: "empty", baselines: false}}')
    try:
        read_benchmark_config(bench)
    except ConfigError as err:
        assert "no systems" in str(err)
    else:
        raise AssertionError("a benchmark with nothing to run must fail")
