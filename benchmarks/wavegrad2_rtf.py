"""WaveGrad 2 real-time factor per number of refinement steps (paper-size model, random weights, CPU by default).

For each step count the whole text-to-speech path runs (encoder, duration/range predictors, Gaussian upsampling,
``steps`` decoder passes over the full utterance) on a phoneme sequence sized for about ``--seconds`` of audio
(durations fixed so every run has the same length). RTF = wall time / audio seconds; the minimum over
``--repeats`` runs is reported. Step counts whose estimated time (from the measured time per decoder pass)
exceeds ``--budget`` seconds are not run but extrapolated and marked so, which keeps a 1000-step row bounded.

Usage: python benchmarks/wavegrad2_rtf.py [--steps 6 50 1000] [--seconds 2] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.tts.wavegrad2.config import WaveGrad2ExperimentConfig  # noqa: E402
from models.tts.wavegrad2.model import WaveGrad2  # noqa: E402
from modules.diffusion import NoiseSchedule, linear_betas, schedule_for_steps  # noqa: E402
from utils.config import load_config, validate  # noqa: E402

PAPER = ROOT / "models/tts/wavegrad2/configs/paper.json5"


def schedule(steps: int, train: NoiseSchedule) -> NoiseSchedule:
    if steps == train.steps:
        return train
    return NoiseSchedule.from_betas(schedule_for_steps(steps, float(train.noise_levels[-1])))


def run_once(model: WaveGrad2, text, lengths, durations, sched, device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one synthesis."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    model.infer(text, lengths, sched, generator=torch.Generator().manual_seed(0), durations=durations)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(PAPER))
    p.add_argument("--steps", type=int, nargs="+", default=[6, 50, 1000])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--budget", type=float, default=120.0, help="seconds allowed per step count before extrapolating")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = validate(load_config(args.config), WaveGrad2ExperimentConfig)
    torch.manual_seed(0)
    model = WaveGrad2.from_config(cfg.model).to(device).eval()
    frames = int(round(args.seconds * cfg.model.sample_rate / cfg.model.hop_length))
    n_tokens = max(1, frames // 8)  # ~8 frames (100 ms) per phoneme
    durations = torch.full((1, n_tokens), float(frames // n_tokens), device=device)
    durations[0, -1] += frames - float(durations.sum())
    text = torch.randint(1, cfg.model.n_symbols, (1, n_tokens), device=device)
    lengths = torch.tensor([n_tokens], device=device)
    audio_seconds = frames * cfg.model.hop_length / cfg.model.sample_rate
    decoder_params = sum(q.numel() for q in model.decoder.parameters())
    print(f"device {device} ({torch.get_num_threads()} threads), model {sum(q.numel() for q in model.parameters())/1e6:.1f} M "
          f"params (decoder {decoder_params/1e6:.1f} M), {audio_seconds:.2f} s of audio at {cfg.model.sample_rate} Hz")
    train = NoiseSchedule.from_betas(linear_betas(1000)) if cfg.model.train_betas is None else \
        NoiseSchedule.from_betas(cfg.model.train_betas)
    with torch.no_grad():
        run_once(model, text, lengths, durations, schedule(1, train), device)  # warm-up
        one, one_cpu = min(run_once(model, text, lengths, durations, schedule(1, train), device)
                           for _ in range(args.repeats))
    # CPU time is the one to compare on a shared machine: wall time also counts waiting for a core.
    print("| steps | wall s | RTF (wall) | CPU s | RTF (CPU) | note |\n|---|---|---|---|---|---|")
    for steps in args.steps:
        if one * steps > args.budget:
            wall, cpu = one * steps, one_cpu * steps
            note = f"extrapolated from 1 step ({one:.2f} s wall, {one_cpu:.2f} s CPU)"
        else:
            with torch.no_grad():
                wall, cpu = min(run_once(model, text, lengths, durations, schedule(steps, train), device)
                                for _ in range(args.repeats))
            note = f"measured, min of {args.repeats}"
        print(f"| {steps} | {wall:.1f} | {wall / audio_seconds:.2f} | {cpu:.1f} | {cpu / audio_seconds:.2f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
