"""Anti-aliased SnakeBeta on a GPU: the reference path (transposed conv, activation, strided conv) against the
polyphase path (block-Toeplitz matrix products, modules/alias_free.py), which Activation1d runs on CPU tensors
only. Sizes of a HierSpeech++ decoder's stages for 5 s of 16 kHz output; median of ``--repeats`` timed runs.

Usage: python benchmarks/alias_free_gpu.py [--seconds 5] [--repeats 50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modules.activations import SnakeBeta  # noqa: E402
from modules.alias_free import Activation1d  # noqa: E402


def median_ms(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("alias_free_gpu: no CUDA GPU visible", file=sys.stderr)
        return 2
    print(f"{torch.cuda.get_device_name()}, float32 (TF32 {torch.backends.cudnn.allow_tf32} in convolutions)")
    print("| channels x samples | reference ms | polyphase ms | max abs diff |")
    print("|---|---|---|---|")
    samples = int(args.seconds * 16000)
    for channels, length in ((256, samples // 80), (128, samples // 16), (64, samples // 4), (32, samples // 2),
                            (16, samples)):
        block = Activation1d(SnakeBeta(channels, alpha_logscale=True)).cuda().eval()
        x = torch.randn(1, channels, length, device="cuda")
        with torch.no_grad():
            reference = lambda v: block.downsample(block.act(block.upsample(v)))  # noqa: E731
            polyphase = block._forward_polyphase
            diff = float((reference(x) - polyphase(x)).abs().max())
            ref_ms, poly_ms = median_ms(reference, x, args.repeats), median_ms(polyphase, x, args.repeats)
        print(f"| {channels} x {length} | {ref_ms:.3f} | {poly_ms:.3f} | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
