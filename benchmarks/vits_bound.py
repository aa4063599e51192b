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
from pathlib import Path
from typing import Callable, Dict, List, Sequence

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
from study_common import interleaved_best  # noqa: E402
from utils.devices import cpu_summary  # noqa: E402
from utils.flops import count_flops, gemm_gflops_per_second  # noqa: E402
from vits_vs_onnxruntime import SCALES, default_session  # noqa: E402

Texts = List[List[np.ndarray]]  # per text, its id sequences


def echelon_system(runtime, threads: int, text_only: bool = False) -> Callable[[Texts], None]:
    """Every text through Echelon's runtime graphs on ``threads`` (``text_only``: the text graph alone)."""
    text_session = runtime.sessions(threads)[0]
    generator = torch.Generator().manual_seed(0)

    def run(texts: Texts) -> None:
        with call_threads(threads):
            for sequences in texts:
                for ids in sequences:
                    if text_only:
                        text_session.run(None, runtime.text_feeds(ids, None, SCALES, generator))
                    else:
                        runtime.infer_one(ids, None, SCALES, generator)
    return run


def piper_system(path: Path, threads: int) -> Callable[[Texts], None]:
    session = default_session(path, threads)

    def run(texts: Texts) -> None:
        for sequences in texts:
            for ids in sequences:
                session.run(None, {"input": ids[None], "input_lengths": np.array([ids.size]), "scales": SCALES})
    return run


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
        systems: Dict[str, Callable[[Texts], None]] = {}
        threads_of: Dict[str, int] = {}  # name -> the threads it runs on
        text_graph_only = set()  # names timing the text graph alone (no rate: the FLOPs count whole texts)
        for threads in (1, 2):
            whole, text_graph, piper = (f"echelon graphs, {threads} thread(s)",
                                        f"  of which the text graph, {threads} thread(s)",
                                        f"piper's file, {threads} thread(s)")
            systems[whole] = echelon_system(synth.runtime, threads)
            systems[text_graph] = echelon_system(synth.runtime, threads, text_only=True)
            systems[piper] = piper_system(piper_file, threads)
            threads_of.update({whole: threads, text_graph: threads, piper: threads})
            text_graph_only.add(text_graph)
        # one pass over all texts per system and round, the systems taking turns: back to back, no pause, so the
        # intra-op workers stay warm within a pass
        best, _ = interleaved_best(systems, [ids], args.rounds)
    n = len(texts)
    print(f"CPU: {cpu_summary()}")
    print(f"{n} texts, {sum(len(s) for s in ids)} sequences; best of {args.rounds} rounds, interleaved")
    print(f"counted arithmetic {flops / 1e9:.2f} GFLOP a text; GEMM rate {gemm / 1e9:.1f} GFLOP/s on one thread: "
          f"floor {flops / gemm * 1e3:.1f} ms a text on one core, {flops / gemm / 2 * 1e3:.1f} ms on two")
    print("| system | ms a text | CPU ms a text | useful GFLOP/s per thread | % of GEMM rate |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in best.items():
        per_thread = flops / (wall / n) / threads_of[name]
        rate, share = ("", "") if name in text_graph_only else (f"{per_thread / 1e9:.1f}",
                                                                  f"{100 * per_thread / gemm:.0f}")
        print(f"| {name} | {wall / n * 1e3:.1f} | {cpu / n * 1e3:.1f} | {rate} | {share} |")
    one, two = best["echelon graphs, 1 thread(s)"][0], best["echelon graphs, 2 thread(s)"][0]
    piper_two = best["piper's file, 2 thread(s)"][0]
    print(f"echelon on 2 threads: {one / two:.2f}x its 1-thread speed (2.00x = a perfect split)")
    print(f"graphs alone, 2 threads: echelon {piper_two / two:.2f}x Piper's file; ceiling with a perfect 2-core split "
          f"of echelon's 1-thread work: {piper_two / (one / 2):.2f}x")


if __name__ == "__main__":
    main()
