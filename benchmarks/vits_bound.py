"""How close the joe voice's runtime graphs come to this CPU's arithmetic bound, and what that leaves for a lone
request (``serve_vs_piper.py`` at concurrency 1) against Piper's file.

The 24 sentences of ``serve_vs_piper.py``, each as the id sequences both runtimes speak (one per espeak-ng
sentence, Piper's default scales):

1. **Arithmetic**: the FLOPs of the PyTorch path (``utils.flops.count_flops``: the same convolutions and matrix
   products as the graphs, without the two-thread graph's window halo) and this CPU's float32 GEMM rate on one
   thread (oneDNN, 2048-square; ``utils.flops.gemm_gflops_per_second``). Their ratio is the floor of one text's
   time on one core; half of it the floor on two.
2. **Graphs alone**, called back to back (no HTTP, no pause, so the intra-op workers stay warm): Echelon's
   runtime graphs on 1 thread (text + plain acoustic graph) and on 2 (text + the windowed acoustic graph), and
   Piper's ``.onnx`` with onnxruntime's default session options, as its HTTP server runs it, on 1 and 2 threads.
   The systems alternate round by round; best round of ``--rounds``.

Printed: seconds and CPU seconds per text, the useful arithmetic rate (counted FLOPs over wall time, per busy
core) against the GEMM rate, and the two ratios that decide concurrency 1: the graphs' measured 2-thread ratio to
Piper's, and the ceiling, Echelon's 1-thread time split perfectly over two cores (no halo, a text graph that
halves) against Piper's 2-thread time. Usage::

    python benchmarks/vits_bound.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from models.base.call_threads import call_threads  # noqa: E402
from models.base.pipeline import load_pipeline  # noqa: E402
from models.tts.vits.piper import convert_piper, installed_voice  # noqa: E402
from modules.onednn_linear import linear as onednn_linear  # noqa: E402
from serve_vs_piper import sentences  # noqa: E402
from utils.devices import cpu_summary  # noqa: E402
from utils.flops import count_flops, gemm_gflops_per_second  # noqa: E402
from vits_vs_onnxruntime import SCALES, default_session  # noqa: E402

Texts = List[List[np.ndarray]]  # per text, its id sequences


def echelon_system(runtime, threads: int, texts: Texts, text_only: bool = False) -> Callable[[], None]:
    """Every text through Echelon's runtime graphs on ``threads`` (``text_only``: the text graph alone)."""
    text_session = runtime.sessions(threads)[0]
    generator = torch.Generator().manual_seed(0)

    def run() -> None:
        with call_threads(threads):
            for sequences in texts:
                for ids in sequences:
                    if text_only:
                        text_session.run(None, runtime.text_feeds(ids, None, SCALES, generator))
                    else:
                        runtime.infer_one(ids, None, SCALES, generator)
    return run


def piper_system(path: Path, threads: int, texts: Texts) -> Callable[[], None]:
    session = default_session(path, threads)

    def run() -> None:
        for sequences in texts:
            for ids in sequences:
                session.run(None, {"input": ids[None], "input_lengths": np.array([ids.size]), "scales": SCALES})
    return run


def best_rounds(systems: Dict[str, Callable[[], None]], rounds: int) -> Dict[str, Tuple[float, float]]:
    """name -> (wall s, CPU s) of its fastest round; systems alternate within each round, one warm-up each."""
    best: Dict[str, Tuple[float, float]] = {}
    for run in systems.values():
        run()
    for _ in range(rounds):
        for name, run in systems.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    return best


def counted_flops(pipeline, texts: Sequence[str]) -> int:
    return sum(count_flops(lambda text=text: pipeline.synthesize([text]))[1] for text in texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = sentences()
    piper_file = installed_voice("joe")
    with tempfile.TemporaryDirectory() as tmp:
        joe = convert_piper(piper_file, Path(tmp) / "joe").parent.parent
        flops = counted_flops(load_pipeline(joe, backend="torch"), texts) / len(texts)
        torch.set_num_threads(1)
        gemm = gemm_gflops_per_second(onednn_linear, size=2048) * 1e9
        synth = load_pipeline(joe).synth
        ids: Texts = [[np.array(s, dtype=np.int64) for s in synth.text_sequences(t)] for t in texts]
        systems: Dict[str, Callable[[], None]] = {}
        for threads in (1, 2):
            systems[f"echelon graphs, {threads} thread(s)"] = echelon_system(synth.runtime, threads, ids)
            systems[f"  of which the text graph, {threads} thread(s)"] = echelon_system(synth.runtime, threads, ids,
                                                                                       text_only=True)
            systems[f"piper's file, {threads} thread(s)"] = piper_system(piper_file, threads, ids)
        best = best_rounds(systems, args.rounds)
    n = len(texts)
    print(f"CPU: {cpu_summary()}")
    print(f"{n} texts, {sum(len(s) for s in ids)} sequences; best of {args.rounds} rounds, interleaved")
    print(f"counted arithmetic {flops / 1e9:.2f} GFLOP a text; GEMM rate {gemm / 1e9:.1f} GFLOP/s on one thread: "
          f"floor {flops / gemm * 1e3:.1f} ms a text on one core, {flops / gemm / 2 * 1e3:.1f} ms on two")
    print("| system | ms a text | CPU ms a text | useful GFLOP/s per thread | % of GEMM rate |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in best.items():
        threads = 2 if "2 thread" in name else 1
        rate = "" if "text graph" in name else f"{flops / (wall / n) / threads / 1e9:.1f}"
        share = "" if "text graph" in name else f"{100 * flops / (wall / n) / threads / gemm:.0f}"
        print(f"| {name} | {wall / n * 1e3:.1f} | {cpu / n * 1e3:.1f} | {rate} | {share} |")
    one, two = best["echelon graphs, 1 thread(s)"][0], best["echelon graphs, 2 thread(s)"][0]
    piper_two = best["piper's file, 2 thread(s)"][0]
    print(f"echelon on 2 threads: {one / two:.2f}x its 1-thread speed (2.00x = a perfect split)")
    print(f"graphs alone, 2 threads: echelon {piper_two / two:.2f}x Piper's file; ceiling with a perfect 2-core split "
          f"of echelon's 1-thread work: {piper_two / (one / 2):.2f}x")


if __name__ == "__main__":
    main()
