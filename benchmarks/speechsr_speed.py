"""SpeechSR CPU speed: optimized inference vs. a faithful transcription of the official arithmetic.

Reference = ``SpeechSR`` as loaded (weight norm recomputed on every call, zero-stuffing transposed conv and
depthwise low-pass per anti-aliased activation, one-shot tensors): the same operations, in the same order,
as the released ``speechsr.py`` (it reproduces the official outputs to ~1e-7, tests/models/sr).
Optimized = ``SpeechSR.optimize_for_inference()`` (folded weight norm, channels-last fused SnakeBeta,
cache-sized chunks). Both run on the same real speech, alternating, best of ``--repeats``.

Usage: python benchmarks/speechsr_speed.py [--seconds 5] [--threads 1 2] [--rates 24000 48000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.sr.speechsr.model import DEFAULT_CHUNK_SAMPLES, SpeechSR  # noqa: E402
from processors.audio import load_audio  # noqa: E402
from utils.devices import cpu_summary  # noqa: E402

# The official code on this machine type, 5 s of audio, 1 thread (blueprint §8.3): SpeechSR-48k 7.07 s,
# SpeechSR-24k 1.31 s; the whole 16 kHz VC path (F0 + MMS + synthesizer) 4.88 s.
OFFICIAL_SECONDS_1T = {48000: 7.07, 24000: 1.31}
OFFICIAL_VC_SECONDS_1T = 4.88
DEFAULT_WAV = ROOT / "egs" / "mini" / "corpus" / "hierspeechpp_examples" / "reference_1.wav"


def speech_input(path: Path, seconds: float) -> torch.Tensor:
    """(1, 1, N) real 16 kHz speech, the clip repeated up to ``seconds``."""
    wav = load_audio(path, 16000)
    n = int(round(seconds * 16000))
    reps = -(-n // len(wav))
    return torch.from_numpy(np.tile(wav, reps)[:n].astype(np.float32)).view(1, 1, n)


def timed(model: SpeechSR, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    with torch.no_grad():
        y = model(x)
    return time.perf_counter() - start, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rates", type=int, nargs="+", default=[48000, 24000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_SAMPLES)
    parser.add_argument("--wav", type=Path, default=DEFAULT_WAV)
    args = parser.parse_args()

    x = speech_input(args.wav, args.seconds)
    print(f"CPU: {cpu_summary()}")
    print(f"input: {args.wav.name} tiled to {args.seconds:.1f} s at 16 kHz; best of {args.repeats}, alternating")
    print(f"{'rate':>6} {'thr':>3} {'reference s':>12} {'RTF':>6} {'optimized s':>12} {'RTF':>6} {'speed-up':>9} {'max|diff|':>10}")
    for rate in args.rates:
        reference = SpeechSR.from_pretrained(rate)
        optimized = SpeechSR.from_pretrained(rate).optimize_for_inference(args.chunk)
        for threads in args.threads:
            torch.set_num_threads(threads)
            timed(reference, x[..., :16000])  # warm-up (allocator, kernels)
            timed(optimized, x[..., :16000])
            ref_t, opt_t, diff = [], [], 0.0
            for _ in range(args.repeats):
                t_ref, y_ref = timed(reference, x)
                t_opt, y_opt = timed(optimized, x)
                ref_t.append(t_ref)
                opt_t.append(t_opt)
                diff = max(diff, (y_ref - y_opt).abs().max().item())
            r, o = min(ref_t), min(opt_t)
            print(f"{rate:>6} {threads:>3} {r:>12.3f} {r / args.seconds:>6.3f} {o:>12.3f} {o / args.seconds:>6.3f} "
                  f"{r / o:>8.2f}x {diff:>10.2e}")
    print(f"context (official code, quiet machine, 1 thread, 5 s): SpeechSR-48k {OFFICIAL_SECONDS_1T[48000]} s, "
          f"SpeechSR-24k {OFFICIAL_SECONDS_1T[24000]} s, 16 kHz VC {OFFICIAL_VC_SECONDS_1T} s "
          "(benchmarks/hierspeechpp_vc_speed.py); full TTS RTF: benchmarks/tts_speed.py")


if __name__ == "__main__":
    main()
