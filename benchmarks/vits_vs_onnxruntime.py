"""Echelon's VITS pipeline vs onnxruntime on Piper's own file, text in -> audio out, on the installed joe voice.

One process, the systems interleaved (each repeat runs every system once, in turn), best of ``--repeats``,
at 1 and 2 threads. Every system starts from the text and ends with the waveform, phonemisation included, with
the same espeak-ng front end (Echelon's Piper phoneme ids, which equal Piper's):

* ``echelon``       -- ``load_pipeline(joe_dir)``: Echelon's default CPU path (its runtime graphs on onnxruntime)
* ``echelon-torch`` -- ``load_pipeline(joe_dir, backend="torch")``: the PyTorch path
* ``piper-ort``     -- Piper's ``en_US-joe-medium.onnx`` through onnxruntime with its default session options
  (only the thread count set), as Piper and most deployments run it (Piper's input names and scales)
* ``piper-ort-same-settings`` -- Piper's file with Echelon's session options (``models.base.onnx_backend.session``:
  no spinning workers when threads > 1): separates the graph's share of a difference from the settings' share
* ``export-ort``    -- ``echelon-export onnx`` of the converted voice with Echelon's session options (compare
  with ``piper-ort-same-settings``)
* ``export-ort-default-settings`` -- the same file with onnxruntime's defaults, as Piper would run it (compare
  with ``piper-ort``)

All run with noise 0.667 / length 1 / noise_w 0.8. The sampled durations make each run's audio a little longer
or shorter, so runs are compared by real-time factor (seconds of compute per second of audio): the best RTF of
each system is kept, and the ratio column is piper-ort's best RTF over the system's (>= 1: at least as fast).
Wall times are inflated when the machine is shared; the interleaved ratios are the meaningful figures. CPU time
(user+sys of this process) is printed beside each.

Each timed call starts ``--pause`` seconds (0.2) after the previous one ends: onnxruntime's default workers
(piper-ort) and torch's OpenMP workers keep spinning for a while after a call, and on 2 cores that stole the
second core from whichever system ran next (measured: Piper's file at 2 threads 0.19 s right after a spinning
session, 0.16 s after a pause; 2-thread ratios moved by up to 0.2).

Usage: python benchmarks/vits_vs_onnxruntime.py [--threads 1 2] [--repeats 5] [--text "..."] [--quantized]
       [--pause 0.2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.base import onnx_backend  # noqa: E402
from models.base.pipeline import load_pipeline  # noqa: E402
from models.tts.vits.onnx_export import export_checkpoint  # noqa: E402
from models.tts.vits.piper import convert_piper, installed_voice  # noqa: E402
from utils.devices import cpu_summary  # noqa: E402

DEFAULT_TEXT = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
                "It is easy to tell the depth of a well.")
SCALES = np.array([0.667, 1.0, 0.8], dtype=np.float32)


def default_session(path: Path, threads: int):
    """onnxruntime's defaults, the thread count set (what `piper` and most deployments do)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_system(path: Path, frontend, threads: int, defaults: bool = False) -> Callable[[str], np.ndarray]:
    session = default_session(path, threads) if defaults else onnx_backend.session(path, threads)

    def speak(text: str) -> np.ndarray:
        ids = np.array([frontend(text)["ids"]], dtype=np.int64)
        feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": SCALES}
        return session.run(None, feeds)[0].reshape(-1)
    return speak


def pipeline_system(pipeline) -> Callable[[str], np.ndarray]:
    return lambda text: pipeline.synthesize([text])[0].waveform


def measure(systems: Dict[str, Callable[[str], np.ndarray]], text: str, repeats: int, pause: float = 0.2
            ) -> Dict[str, Tuple[float, float, float]]:
    """name -> (wall s, CPU s, audio samples) of the run with the best real-time factor; one warm-up call each;
    ``pause`` seconds before each timed call (the previous system's spinning workers go to sleep)."""
    best: Dict[str, Tuple[float, float, float]] = {}
    for speak in systems.values():
        speak(text)
    for _ in range(repeats):
        for name, speak in systems.items():
            time.sleep(pause)
            wall, cpu = time.perf_counter(), time.process_time()
            audio = speak(text)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if name not in best or wall / audio.size < best[name][0] / best[name][2]:
                best[name] = (wall, cpu, float(audio.size))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--quantized", action="store_true", help="also time `echelon-export --quantize int8`")
    parser.add_argument("--no_torch", action="store_true", help="leave out the PyTorch path (slowest)")
    parser.add_argument("--pause", type=float, default=0.2,
                        help="seconds between timed calls, so that no system runs beside another's spinning workers")
    args = parser.parse_args()
    piper_file = installed_voice("joe")
    with tempfile.TemporaryDirectory() as tmp:
        joe = convert_piper(piper_file, Path(tmp) / "joe").parent.parent
        exported = export_checkpoint(joe, Path(tmp) / "export" / "joe.onnx")[0]
        graphs = {"export-ort": exported}
        if args.quantized:
            quantized = Path(tmp) / "int8" / "joe.onnx"
            export_checkpoint(joe, quantized)
            graphs["export-int8-ort"] = onnx_backend.quantize_int8(quantized)
        rows: List[str] = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            echelon = load_pipeline(joe)  # sessions take torch's thread count
            frontend = echelon.synth.frontend
            systems = {"echelon": pipeline_system(echelon)}
            if not args.no_torch:
                systems["echelon-torch"] = pipeline_system(load_pipeline(joe, backend="torch"))
            systems["piper-ort"] = onnx_system(piper_file, frontend, threads, defaults=True)
            systems["piper-ort-same-settings"] = onnx_system(piper_file, frontend, threads)
            systems.update({name: onnx_system(path, frontend, threads) for name, path in graphs.items()})
            systems["export-ort-default-settings"] = onnx_system(exported, frontend, threads, defaults=True)
            best = measure(systems, args.text, args.repeats, args.pause)
            reference = best["piper-ort"][0] / best["piper-ort"][2]
            for name, (wall, cpu, samples) in best.items():
                seconds = samples / echelon.sample_rate
                rows.append(f"| {threads} | {name} | {wall:.3f} | {cpu:.3f} | {seconds:.2f} | {wall / seconds:.3f} "
                            f"| {reference / (wall / samples):.2f} |")
    print(f"CPU: {cpu_summary()}")
    print(f"text: {args.text!r}; best of {args.repeats}, interleaved")
    print("| threads | system | wall s | CPU s | audio s | RTF | piper-ort RTF / system RTF |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
