"""VALL-E AR decoding speed, full-size (d 1024, 16 heads, 12 layers) on CPU: KV cache vs full recomputation.

The reference decodes by re-running the whole [text ; audio] sequence through the AR decoder at every step;
Echelon's default keeps every layer's keys/values and runs only the new token. Both paths are timed here
side by side at the same audio context lengths (frames already in the sequence: 75 frames = 1 s), driving the
decoder with fixed tokens (random weights: the cost does not depend on the values or on when EOS comes).

Reported per context length: seconds per decoding step and tokens/s of each path, and their ratio; then the
estimated time to decode a 10 s utterance (750 frames of audio context at the end: a 3 s prompt of 225 frames
+ 525 generated), integrating the measured per-step cost linearly between the context lengths (plus the
cached path's prompt pre-fill, measured).

Usage: python benchmarks/valle_ar_speed.py [--threads 1] [--text_tokens 120] [--contexts 225 488 750]
       [--cached_steps 8] [--recompute_steps 1]
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

from models.tts.valle.config import ValleModelConfig  # noqa: E402
from models.tts.valle.decoding import ArStepper  # noqa: E402
from models.tts.valle.model import Valle  # noqa: E402
from utils.wording import plural  # noqa: E402


def step_seconds(model, text, prompt, steps: int, use_cache: bool) -> tuple[float, float]:
    """(prefill seconds, mean seconds per decoding step) with ``prompt (1, L)`` already in the sequence."""
    text_lens = torch.tensor([text.shape[1]])
    prompt_lens = torch.tensor([prompt.shape[1]])
    capacity = text.shape[1] + prompt.shape[1] + steps + 2
    stepper = ArStepper(model, text, text_lens, prompt, prompt_lens, capacity, use_cache)
    t0 = time.perf_counter()
    stepper.first()
    prefill = time.perf_counter() - t0
    token = torch.tensor([7])
    t0 = time.perf_counter()
    for _ in range(steps):
        stepper.next(token)
    return prefill, (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--text_tokens", type=int, default=120, help="phoneme tokens (prompt + target text)")
    parser.add_argument("--contexts", type=int, nargs="+", default=[225, 488, 750])
    parser.add_argument("--cached_steps", type=int, default=8)
    parser.add_argument("--recompute_steps", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ValleModelConfig()
    t0 = time.perf_counter()
    model = Valle.from_config(cfg).eval()
    print(f"full-size VALL-E built in {time.perf_counter() - t0:.1f} s "
          f"({sum(p.numel() for p in model.ar_parameters()) / 1e6:.1f} M AR parameters), torch {torch.__version__}, "
          f"{plural(torch.get_num_threads(), 'thread')}, text {args.text_tokens} tokens")  # fmt: skip
    text = torch.randint(3, cfg.num_text_tokens, (1, args.text_tokens))
    rows = []
    with torch.inference_mode():
        for length in args.contexts:
            prompt = torch.randint(0, cfg.num_audio_tokens, (1, length))
            prefill, cached = step_seconds(model, text, prompt, args.cached_steps, True)
            _, full = step_seconds(model, text, prompt, args.recompute_steps, False)
            rows.append((length, prefill, cached, full))
            print(f"context {length:4d} frames: cached {cached * 1e3:8.1f} ms/step ({1 / cached:6.2f} tok/s), "
                  f"recomputed {full * 1e3:8.1f} ms/step ({1 / full:6.3f} tok/s), ratio x{full / cached:.1f}; "
                  f"pre-fill {prefill:.2f} s", flush=True)  # fmt: skip
    lengths = np.array([r[0] for r in rows], dtype=float)
    start, end = lengths.min(), lengths.max()
    frames = np.arange(start, end)
    cached_total = rows[0][1] + float(np.interp(frames, lengths, [r[2] for r in rows]).sum())
    full_total = float(np.interp(frames, lengths, [r[3] for r in rows]).sum())
    print(f"decoding {int(end - start)} frames after a {int(start)}-frame prompt ({end / 75:.0f} s of audio context): "
          f"cached ~{cached_total:.0f} s ({(end - start) / cached_total:.2f} tok/s), "
          f"recomputed ~{full_total:.0f} s ({(end - start) / full_total:.3f} tok/s), x{full_total / cached_total:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
