"""What ``vocoder_precision="bfloat16"`` costs and gains: the AMP blocks' convolutions of SpeechSR and of the
HierSpeech++ synthesizer's generator in bfloat16 (``modules/vocoders/amp.set_vocoder_precision``) against the
default float32 path, on this CPU.

**SpeechSR-24k / -48k** (the bundled released weights) on real transcribed speech (``--clips``, by default the
repo's 16 kHz VCTK utterances, whole; ``../shared/data/real/vctk_starganv2vc`` has 48 kHz originals): speed
(interleaved, best of ``--repeats``, CPU time beside wall time), and against the float32 output: SNR over the
whole band and above 8 kHz (the band SpeechSR adds), the largest sample difference, log-spectral distance (full
band, above 8 kHz); on each output: DNSMOS P.835 (it scores at 16 kHz), Whisper's WER against the transcripts of
the nearest ``manifest.csv`` (Whisper also hears 16 kHz only), and, for recordings that hold the output's band,
the LSD above 8 kHz to the recording itself.

**Synthesizer generator** (full-size configuration, seeded random weights: no trained weights are available
offline): the VC path (``convert``) on ``--seconds`` of seeded random SSL features and F0, its speed and the
SNR / largest difference of the bfloat16 waveform to the float32 one. That is the numerical deviation only: with
random weights it says nothing about how a trained voice sounds.

Usage: python benchmarks/vocoder_bf16_quality.py [--threads 1] [--repeats 3] [--utterances 10] [--seconds 5]
       [--rates 24000 48000] [--parts sr synthesizer] [--clips DIR] [--clip_seconds 60] [--no_wer]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.study_common import (BAND, CLIPS, INPUT_RATE, Clip, band_snr, dnsmos_means,  # noqa: E402
                                     interleaved_best, print_table, speech_clips)
from evaluation.base import EvalItem  # noqa: E402
from evaluation.dnsmos import DNSMOS  # noqa: E402
from evaluation.intelligibility import WordErrorRate, corpus_error_rates  # noqa: E402
from evaluation.spectral import log_spectral_distance  # noqa: E402
from models.sr.speechsr.inference import SpeechSRInference  # noqa: E402
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer  # noqa: E402
from modules.vocoders.amp import set_vocoder_precision  # noqa: E402
from utils.wording import plural  # noqa: E402

PRECISIONS = ("float32", "bfloat16")


def snr_db(ours: np.ndarray, reference: np.ndarray) -> float:
    n = min(ours.size, reference.size)
    err = np.sum((ours[:n] - reference[:n]).astype(np.float64) ** 2)
    return float(10 * np.log10(np.sum(reference[:n].astype(np.float64) ** 2) / max(err, 1e-30)))


def transcripts(clips: List[Clip]) -> List[Optional[str]]:
    """Each whole clip's transcript from the nearest ``manifest.csv`` above its file (columns ``path``,
    ``transcript``, as in egs/mini/corpus and ../shared/data/real); None for cropped or untranscribed clips."""
    tables: Dict[Path, Dict[Path, str]] = {}

    def table(manifest: Path) -> Dict[Path, str]:
        if manifest not in tables:
            with open(manifest, newline="", encoding="utf-8") as fh:
                tables[manifest] = {(manifest.parent / row["path"]).resolve(): row.get("transcript") or ""
                                    for row in csv.DictReader(fh)}
        return tables[manifest]

    found: List[Optional[str]] = []
    for clip in clips:
        manifest = next((d / "manifest.csv" for d in clip.path.resolve().parents if (d / "manifest.csv").is_file()),
                        None)
        whole = clip.start == 0 and clip.recording(INPUT_RATE).size == clip.samples
        found.append(table(manifest).get(clip.path.resolve()) or None if manifest and whole else None)
    return found


def wer_of(wer: Optional[WordErrorRate], waves: List[np.ndarray], rate: int, texts: List[Optional[str]]) -> str:
    items = [EvalItem(str(i), w, rate, text=t) for i, (w, t) in enumerate(zip(waves, texts)) if t]
    if wer is None or not items:
        return "-"
    return f"{100 * corpus_error_rates(wer.score(items))['wer_corpus']:.1f} %"


def speechsr_study(rate: int, clips: List[Clip], repeats: int, dnsmos: DNSMOS, wer: Optional[WordErrorRate]) -> None:
    engines = {p: SpeechSRInference.pretrained(vocoder_precision=p) for p in PRECISIONS}
    runners = {p: (lambda x, e=engine: e.upsample(x, rate)) for p, engine in engines.items()}
    best, outputs = interleaved_best(runners, [clip.input for clip in clips], repeats)
    base, texts = outputs["float32"], transcripts(clips)
    recordings = [clip.recording(rate) for clip in clips]
    rows = []
    for p in PRECISIONS:
        ys = outputs[p]
        same = ys is base
        lsd = [np.mean([log_spectral_distance(y, r, rate, min_hz=hz) for y, r in zip(ys, base)]) for hz in (0, BAND)]
        real = [log_spectral_distance(y, r, rate, min_hz=BAND) for y, r in zip(ys, recordings) if r is not None]
        mos = dnsmos_means(dnsmos, ys, rate)
        rows.append((p, best[p][0], best[p][1], f"{best['float32'][1] / best[p][1]:.2f}",
                     "-" if same else f"{np.mean([snr_db(y, r) for y, r in zip(ys, base)]):.1f}",
                     "-" if same else f"{np.mean([band_snr(y, r, rate, BAND) for y, r in zip(ys, base)]):.1f}",
                     "-" if same else f"{max(float(np.abs(y - r).max()) for y, r in zip(ys, base)):.4f}",
                     lsd[0], lsd[1], f"{np.mean(real):.3f}" if real else "-", f"{mos['ovrl']:.3f}",
                     f"{mos['sig']:.3f}", f"{mos['bak']:.3f}", wer_of(wer, ys, rate, texts)))
    print(f"\nSpeechSR-{rate // 1000}k: {len(clips)} clips, {sum(c.samples for c in clips) / INPUT_RATE:.1f} s of "
          f"16 kHz input, {plural(torch.get_num_threads(), 'thread')}, best of {repeats}; SNR, max diff and LSD to the "
          f"float32 output, means over clips (max diff: the largest); LSD > 8k to the recording itself over the "
          f"{sum(r is not None for r in recordings)} clips recorded at >= {rate} Hz; WER over the "
          f"{sum(t is not None for t in texts)} transcribed whole clips")
    print_table(["precision", "wall s", "CPU s", "speed-up (CPU)", "SNR dB", "SNR > 8k dB", "max diff", "LSD",
                 "LSD > 8k", "LSD > 8k to recording", "DNSMOS OVRL", "SIG", "BAK", "WER"], rows)


def synthesizer_study(seconds: float, repeats: int) -> None:
    torch.manual_seed(0)
    model = HierSpeechPPSynthesizer.from_config({}).drop_training_modules()
    frames = int(seconds * 50)
    gen = torch.Generator().manual_seed(1)
    ssl = torch.randn(1, model.config.ssl_channels, frames, generator=gen)
    log_f0 = torch.log(150 + 30 * torch.rand(1, 1, 4 * frames, generator=gen) + 1)
    g = torch.randn(1, model.config.gin_channels, 1, generator=gen) * 0.1
    noise = torch.randn(1, model.config.inter_channels, frames, generator=gen)
    lengths = torch.tensor([frames])
    model.prepare_for_inference()

    def run(precision: str):
        def convert(_):
            set_vocoder_precision(model, precision)
            return model.convert(ssl, lengths, log_f0, g, noise=noise)["wav"].reshape(-1).numpy()
        return convert

    best, outputs = interleaved_best({p: run(p) for p in PRECISIONS}, [None], repeats)
    ref, low = outputs["float32"][0], outputs["bfloat16"][0]
    print(f"\nSynthesizer VC path (convert), {seconds:.1f} s at 16 kHz, random weights, "
          f"{plural(torch.get_num_threads(), 'thread')}, best of {repeats}")
    print_table(["precision", "wall s", "CPU s", "speed-up (CPU)", "SNR dB to float32", "max diff"],
                [("float32", best["float32"][0], best["float32"][1], "1.00", "-", "-"),
                 ("bfloat16", best["bfloat16"][0], best["bfloat16"][1],
                  f"{best['float32'][1] / best['bfloat16'][1]:.2f}", f"{snr_db(low, ref):.1f}",
                  f"{float(np.abs(low - ref).max()):.4f}")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--clip_seconds", type=float, default=60.0, help="longer clips are centre-cropped (no WER)")
    parser.add_argument("--seconds", type=float, default=5.0, help="the synthesizer's output length")
    parser.add_argument("--rates", type=int, nargs="+", default=[24000, 48000])
    parser.add_argument("--parts", nargs="+", choices=["sr", "synthesizer"], default=["sr", "synthesizer"])
    parser.add_argument("--clips", type=Path, default=CLIPS, help="folder of speech .wav (any rate)")
    parser.add_argument("--no_wer", action="store_true", help="skip Whisper (faster)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if "sr" in args.parts:
        clips = speech_clips(args.clips, args.utterances, args.clip_seconds)
        wer = None if args.no_wer else WordErrorRate()
        dnsmos = DNSMOS()
        for rate in args.rates:
            speechsr_study(rate, clips, args.repeats, dnsmos, wer)
    if "synthesizer" in args.parts:
        synthesizer_study(args.seconds, args.repeats)


if __name__ == "__main__":
    main()
