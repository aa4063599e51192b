"""Few-step noise-schedule search for a trained WaveGrad 2 model (as the WaveGrad papers pick their 6-step lists).

Candidates are geometric ``beta_1 .. beta_{N-1}`` for every pair (first, second-to-last beta) of a grid, with
``beta_N`` solved so that the schedule ends at the training schedule's noise floor (sqrt(alpha_bar_N) = 0.081 for
the 1000-step linear schedule): every candidate starts from N(0, I) at a level the model was trained on. Each
candidate refines the validation items with the *reference* durations (manifest or internal aligner) and the
same seeded noise, and is scored by the mean absolute log-mel difference to the recordings. The best schedule is
written as a schedule file that inference takes (``--schedule FILE`` / ``infer.schedule=FILE``)::

    python -m models.tts.wavegrad2.schedule_search --ckpt_dir exp/wg2 --manifest data/valid.jsonl --steps 6 \
        --output exp/wg2/schedule_6.json
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import sys
from typing import Dict, List, Optional, Sequence

import torch

from models.base import checkpoint as ckpt
from models.tts.wavegrad2.dataset import WaveGrad2Dataset, collate_wavegrad2
from models.tts.wavegrad2.inference import WaveGrad2TTS
from models.tts.wavegrad2.model import WaveGrad2
from models.tts.wavegrad2.trainer import aligner_mel
from modules.diffusion import NoiseSchedule, refine, save_schedule, schedule_for_steps
from processors.data.manifest import read_manifest

log = logging.getLogger("echelon.wavegrad2.schedule_search")
DEFAULT_FIRST = [1e-6, 1e-5, 1e-4, 1e-3]
DEFAULT_PENULTIMATE = [1e-2, 5e-2, 0.1, 0.3]


def candidate_schedules(steps: int, first_betas: Sequence[float], penultimate_betas: Sequence[float],
                        final_level: float) -> List[List[float]]:
    """Geometric ``beta_1 .. beta_{N-1}`` per (first, penultimate) pair, ``beta_N`` set to end at ``final_level``.

    Pairs that are not increasing, or that already fall below ``final_level`` before the last step, are skipped.
    """
    if steps < 2:
        return [[float(b) for b in schedule_for_steps(steps, final_level)]] if steps == 1 else []
    target = 2 * math.log(final_level)  # log alpha_bar_N
    out = []
    for first, penultimate in itertools.product(first_betas, penultimate_betas):
        if steps > 2 and not first < penultimate:
            continue
        head = torch.logspace(math.log10(first), math.log10(penultimate), steps - 1, dtype=torch.float64) \
            if steps > 2 else torch.tensor([first], dtype=torch.float64)
        last = 1 - math.exp(target - float(torch.log1p(-head).sum()))
        if 0 < last < 1 and last >= float(head[-1]):
            out.append([float(b) for b in head] + [last])
    return out


@torch.no_grad()
def reference_batches(model: WaveGrad2, dataset: WaveGrad2Dataset, max_items: int) -> List[Dict[str, torch.Tensor]]:
    """Validation items with their conditioning from reference durations: ``cond (1, H', T)``, ``wav (1, T*hop)``."""
    mel_fn = aligner_mel(model.sample_rate, model.hop_length, model.aligner_mel_channels or 80)
    items = []
    for index in range(min(max_items, len(dataset))):
        batch = collate_wavegrad2([dataset[index]])
        sid = batch["sid"] if model.n_speakers > 0 else None
        tokens, token_mask = model.encode(batch["text"], batch["text_lengths"], sid)
        durations = batch["durations"]
        if durations is None:
            if model.aligner is None:
                raise ValueError("schedule search needs reference durations: manifest extra['durations'] or a model "
                                 "with its internal aligner")
            frames = batch["wav_lengths"] // model.hop_length
            durations, _ = model.aligner(tokens, token_mask, mel_fn(batch["wav"]), frames)
        up = model.upsample(tokens, token_mask, durations, batch["text_lengths"])
        items.append({"cond": up["hidden"], "wav": batch["wav"][:, : int(up["frame_lengths"][0]) * model.hop_length]})
    return items


@torch.no_grad()
def score_schedule(model: WaveGrad2, betas: Sequence[float], items: Sequence[Dict[str, torch.Tensor]], seed: int,
                   mel_fn: torch.nn.Module, clip_denoised: bool = True) -> float:
    """Mean |log-mel(generated) - log-mel(reference)| over items, every candidate seeing the same noise."""
    schedule = NoiseSchedule.from_betas(betas)
    total = 0.0
    for index, item in enumerate(items):
        gen = torch.Generator().manual_seed(seed + index)
        y_T = torch.randn(item["wav"].shape, generator=gen)
        wav = refine(lambda y, level: model.decoder(y, item["cond"], level), schedule, y_T, generator=gen,
                     clip_denoised=clip_denoised).clamp(-1, 1)
        total += float((mel_fn(wav) - mel_fn(item["wav"])).abs().mean())
    return total / len(items)


def search(model: WaveGrad2, items, steps: int, first_betas=DEFAULT_FIRST, penultimate_betas=DEFAULT_PENULTIMATE,
           seed: int = 1234) -> List[Dict[str, object]]:
    """Scores of every candidate, best (lowest) first."""
    mel_fn = aligner_mel(model.sample_rate, model.hop_length, 80)
    final_level = float(model.train_schedule.noise_levels[-1])
    candidates = candidate_schedules(steps, first_betas, penultimate_betas, final_level)
    if not candidates:
        raise ValueError(f"no {steps}-step candidate from this grid reaches noise level {final_level:.3f}: widen it")
    results = []
    for betas in candidates:
        results.append({"betas": betas, "score": score_schedule(model, betas, items, seed, mel_fn)})
        log.info("beta_1=%.1e beta_N=%.3g: log-mel L1 %.4f", betas[0], betas[-1], results[-1]["score"])
    return sorted(results, key=lambda r: r["score"])


def parse_floats(text: str) -> List[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="wavegrad2-schedule-search", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt_dir", required=True)
    p.add_argument("--manifest", required=True, help="validation manifest (JSONL) with transcripts")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--output", required=True, help="schedule file to write (JSON)")
    p.add_argument("--max_items", type=int, default=8)
    p.add_argument("--first_betas", type=parse_floats, default=DEFAULT_FIRST, help="comma-separated grid")
    p.add_argument("--penultimate_betas", type=parse_floats, default=DEFAULT_PENULTIMATE,
                   help="comma-separated grid of beta_{N-1}")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    try:
        tts = WaveGrad2TTS.from_checkpoint(args.ckpt_dir)
        model = tts.model
        dataset = WaveGrad2Dataset(read_manifest(args.manifest), tts.data, model.sample_rate, model.hop_length,
                                   model.n_speakers, args.manifest)
        items = reference_batches(model, dataset, args.max_items)
        results = search(model, items, args.steps, args.first_betas, args.penultimate_betas, args.seed)
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as err:
        print(f"wavegrad2-schedule-search: {err}", file=sys.stderr)
        return 2
    best = results[0]
    save_schedule(args.output, best["betas"], steps=args.steps, score=best["score"], metric="log-mel L1",
                  items=len(items), candidates=[{"betas": r["betas"], "score": r["score"]} for r in results])
    print(f"best {args.steps}-step schedule (log-mel L1 {best['score']:.4f}) written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
