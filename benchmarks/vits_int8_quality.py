"""What int8 costs on the joe voice: `echelon-export onnx` (float32) vs `--quantize int8` (onnxruntime dynamic
quantisation), speed and quality, on onnxruntime.

Both graphs speak the same 20 Harvard sentences (IEEE 1969 lists 1-2, public domain) with Piper's default scales
(noise 0.667, length 1, noise_w 0.8; the noise is drawn inside the graphs, so the two runs do not share it).
Quality: Whisper WER (faster-whisper ``base``, :mod:`evaluation.asr`) pooled over the sentences, and DNSMOS
P.835 (:mod:`evaluation.dnsmos`) averaged; plus, at zero noise (deterministic, paired), the largest waveform
difference (int8 can round a duration to another frame count; such sentences are counted instead).
Speed: the summed compute time of all sentences, float32 and int8 interleaved per sentence, best of
``--repeats`` passes (:mod:`benchmarks.study_common`, shared with the other precision studies); CPU time
beside it. The figures depend on the machine's load (see benchmarks/README.md).

Usage: python benchmarks/vits_int8_quality.py [--threads 1] [--repeats 3] [--sentences 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.study_common import dnsmos_means, interleaved_best, megabytes, print_table  # noqa: E402
from evaluation.base import EvalItem  # noqa: E402
from evaluation.dnsmos import DNSMOS  # noqa: E402
from evaluation.intelligibility import WordErrorRate  # noqa: E402
from models.base import onnx_backend  # noqa: E402
from models.tts.vits.onnx_export import export_checkpoint  # noqa: E402
from models.tts.vits.piper import convert_piper, installed_voice  # noqa: E402
from models.tts.vits.text import text_frontend  # noqa: E402
from models.tts.vits.config import VITSExperimentConfig  # noqa: E402
from models.base import checkpoint as ckpt  # noqa: E402
from utils.config import validate  # noqa: E402
from utils.wording import plural  # noqa: E402

HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
]
DEFAULT = np.array([0.667, 1.0, 0.8], dtype=np.float32)
ZERO = np.array([0.0, 1.0, 0.0], dtype=np.float32)


def speak(session, ids: List[int], scales: np.ndarray) -> np.ndarray:
    feeds = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
             "scales": scales}
    return session.run(None, feeds)[0].reshape(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=len(HARVARD))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = HARVARD[: args.sentences]
    with tempfile.TemporaryDirectory() as tmp:
        joe = convert_piper(installed_voice("joe"), Path(tmp) / "joe")
        cfg = validate(ckpt.read_config(joe), VITSExperimentConfig)
        frontend = text_frontend(cfg.data)
        graphs = {"float32": export_checkpoint(joe, Path(tmp) / "f32" / "joe.onnx")[0]}
        graphs["int8"] = onnx_backend.quantize_int8(export_checkpoint(joe, Path(tmp) / "int8" / "joe.onnx")[0])
        sizes = {name: megabytes(path) for name, path in graphs.items()}
        sessions = {name: onnx_backend.session(path, args.threads) for name, path in graphs.items()}
        ids = [frontend(t)["ids"] for t in texts]
        runners = {name: lambda sentence, s=session: speak(s, sentence, DEFAULT) for name, session in sessions.items()}
        best, audio = interleaved_best(runners, ids, args.repeats)
        pairs = [(speak(sessions["float32"], s, ZERO), speak(sessions["int8"], s, ZERO)) for s in ids[:5]]
        same = [float(np.abs(a - b).max()) for a, b in pairs if a.size == b.size]
        lengths = [abs(a.size - b.size) / 256 for a, b in pairs]
    wer, dnsmos = WordErrorRate(), DNSMOS()
    rate = cfg.data.sample_rate
    print(f"{len(texts)} sentences, {plural(args.threads, 'thread')}, best of {args.repeats}; at zero noise, 5 sentences: "
          f"{sum(x > 0 for x in lengths)} changed length (by {max(lengths):.0f} frames at most); max |f32 - int8| "
          f"of the others: {max(same) if same else float('nan'):.3f}")
    rows = []
    for name in sessions:
        items = [EvalItem(f"h{i:02d}", a, rate, text=t) for i, (a, t) in enumerate(zip(audio[name], texts))]
        pooled = wer.corpus(wer.score(items))["wer_corpus"] * 100
        mos = dnsmos_means(dnsmos, audio[name], rate)
        seconds = sum(a.size for a in audio[name]) / rate
        rows.append((name, f"{sizes[name]:.1f}", best[name][0], best[name][1], f"{seconds:.1f}", f"{pooled:.1f}",
                     f"{mos['ovrl']:.2f}", f"{mos['sig']:.2f}", f"{mos['bak']:.2f}"))
    print_table(["graph", "MB", "wall s", "CPU s", "audio s", "WER %", "DNSMOS OVRL", "SIG", "BAK"], rows)


if __name__ == "__main__":
    main()
