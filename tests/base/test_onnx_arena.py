"""``onnx_backend.session``'s memory: a run that needs more than the shared CPU arena's first region extends it
for that run only (the extension is given back after it), and the sessions of a process share one arena."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.base import onnx_backend


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def fill_then_max(path: Path) -> Path:
    """``shape (1,) int64`` -> ``max(full(shape, 0.5))``: an intermediate of ``shape`` floats from one number."""
    fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5])
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["filled"], value=fill),
         helper.make_node("ReduceMax", ["filled"], ["peak"], keepdims=0)],
        "fill_then_max", [helper.make_tensor_value_info("shape", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("peak", TensorProto.FLOAT, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what onnxruntime of any supported release reads
    onnx.save(model, str(path))
    return path


def test_a_long_run_gives_its_arena_extension_back(tmp_path):
    """Run in a fresh interpreter: the arena is per process, and what earlier tests in this worker left in it
    (their sessions' regions, freed heaps) moves the RSS this test reads."""
    import subprocess
    import sys

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r}); "
            f"from tests.base.test_onnx_arena import check_arena_extension_given_back as check; "
            f"from pathlib import Path; check(Path({str(tmp_path)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def check_arena_extension_given_back(tmp_path: Path) -> None:
    session = onnx_backend.session(fill_then_max(tmp_path / "fill.onnx"), threads=1)
    other = onnx_backend.session(tmp_path / "fill.onnx", threads=1)  # same process: the same arena
    assert session.get_inputs()[0].name == "shape"  # the wrapper is the session otherwise
    for floats in (1000, 3_000_000):  # small runs stay inside the first region
        assert float(session.run(None, {"shape": np.array([floats])})[0]) == 0.5
    before = rss_mb()
    big = 2 * onnx_backend.ARENA_INITIAL_BYTES // 4  # twice the first region: an extension is needed
    for run in (session.run, other.run):
        assert float(run(None, {"shape": np.array([big])})[0]) == 0.5
        # without the shrinkage the 256 MB extension (all of it written) would stay in the process
        assert rss_mb() - before < 0.25 * big * 4 / 2**20
