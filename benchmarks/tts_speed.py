"""Full zero-shot TTS real-time factor (text -> 48 kHz) with full-size HierSpeech++ models on CPU.

Stages timed on one paragraph and a real 3 s prompt: text front end (espeak), TTV (108.5 M parameters),
synthesizer (97 M), SpeechSR-48k (released weights), each with Echelon's inference path (weight norm folded,
block-Toeplitz anti-aliasing, chunked SpeechSR); SpeechSR is also timed with the reference (official)
arithmetic for the speed-up. TTV and synthesizer weights are random (the released ones are not available
offline): compute does not depend on the values, but the durations the random TTV predicts set the audio
length, so the RTF (seconds of compute per second of audio) is the comparable figure.

``--vocoder-precision bfloat16`` runs the synthesizer's and SpeechSR's AMP-block convolutions in bfloat16
(the opt-in mode of ``modules/vocoders/amp.set_vocoder_precision``; its output deviation is measured by
``benchmarks/vocoder_bf16_quality.py``).

Arithmetic: one more synthesis of the text and its SpeechSR-48k pass run under a FLOP count (``utils.flops``: matrix
products, convolutions, attention; element-wise work, FFTs and numba kernels such as the fused SnakeBeta are
left out). The script prints the count and the RTF that this CPU's oneDNN float32 GEMM rate (at ``--threads``)
would give if every counted operation ran at it with nothing else to do: a floor that no float32 path with this
arithmetic goes under on this CPU. ``--no-flops`` skips it.

Usage: python benchmarks/tts_speed.py [--threads 1] [--repeats 3] [--text "..."] [--vocoder-precision bfloat16]
       [--no-flops]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.sr.speechsr.model import SpeechSR  # noqa: E402
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer  # noqa: E402
from models.ttv.hierspeechpp_ttv.model import TextToVec  # noqa: E402
from models.ttv.hierspeechpp_ttv.tts import TTSOptions, ZeroShotTTS  # noqa: E402
from modules.onednn_linear import linear as onednn_linear  # noqa: E402
from processors.audio import load_audio  # noqa: E402
from utils.devices import cpu_summary  # noqa: E402
from utils.flops import count_flops, gemm_gflops_per_second  # noqa: E402
from utils.wording import plural  # noqa: E402

DEFAULT_TEXT = ("And lay me down in my cold bed and leave my shining lot. "
                "The army found the people in poverty and left them in comparative wealth.")
PROMPT = ROOT / "egs" / "mini" / "corpus" / "hierspeechpp_examples" / "reference_4.wav"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the whole pipeline (first and best reported)")
    parser.add_argument("--vocoder-precision", default="float32", choices=("float32", "bfloat16"),
                        help="precision of the AMP-block convolutions (synthesizer and SpeechSR)")
    parser.add_argument("--no-flops", action="store_true", help="skip counting the arithmetic and its RTF floor")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    tts = ZeroShotTTS(TextToVec.from_config({}), HierSpeechPPSynthesizer.from_config({}))
    tts.set_vocoder_precision(args.vocoder_precision)
    prompt = load_audio(PROMPT, 16000)
    opts = TTSOptions(vocoder_precision=args.vocoder_precision)
    times, cpu = {}, {}

    # instrument the stages of one synthesis
    ttv_gen, syn_conv = tts.ttv.generate, tts.synthesizer.convert

    def timed(name, fn):
        def run(*a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*a, **k)
            times[name] = times.get(name, 0.0) + time.perf_counter() - t0
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - c0
            return out
        return run

    tts.ttv.generate = timed("TTV", ttv_gen)
    tts.synthesizer.convert = timed("synthesizer", syn_conv)
    tts.synthesize("Warm up.", prompt, opts)
    sr_opt = SpeechSR.from_pretrained(48000).optimize_for_inference(vocoder_precision=args.vocoder_precision)
    sr_ref = SpeechSR.from_pretrained(48000)
    with torch.no_grad():
        sr_opt(torch.zeros(1, 1, 16000))
    runs = []  # per run: {stage: (wall, cpu)}
    for _ in range(args.repeats):
        times.clear()
        cpu.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        wav16 = tts.synthesize(args.text, prompt, opts)
        total16, cpu16 = time.perf_counter() - t0, time.process_time() - c0
        times["front end + prompt + rest"] = total16 - times["TTV"] - times["synthesizer"]
        cpu["front end + prompt + rest"] = cpu16 - cpu["TTV"] - cpu["synthesizer"]
        x = torch.from_numpy(wav16).view(1, 1, -1)
        with torch.no_grad():
            t0, c0 = time.perf_counter(), time.process_time()
            sr_opt(x)
            times["SpeechSR-48k (optimized)"] = time.perf_counter() - t0
            cpu["SpeechSR-48k (optimized)"] = time.process_time() - c0
        runs.append({name: (times[name], cpu[name]) for name in times})
    seconds = wav16.size / 16000
    with torch.no_grad():
        t0 = time.perf_counter()
        sr_ref(x)
        sr_ref_t = time.perf_counter() - t0

    print(f"CPU: {cpu_summary()}")
    print(f"{plural(args.threads, 'thread')}, vocoder precision {args.vocoder_precision}; text {len(args.text)} chars -> {seconds:.2f} s of audio "
          f"(random-weight TTV durations); {args.repeats} runs: the first (every kernel built for these lengths) "
          f"and the best")

    def report(label: str, stages: dict) -> None:
        print(f"  {label}")
        for name, (t, c) in stages.items():
            print(f"    {name:<28} {t:7.2f} s   RTF {t / seconds:.3f}   CPU {c:7.2f} s   CPU RTF {c / seconds:.3f}")
        total, total_cpu = sum(t for t, _ in stages.values()), sum(c for _, c in stages.values())
        print(f"    {'TOTAL text -> 48 kHz':<28} {total:7.2f} s   RTF {total / seconds:.3f}   CPU {total_cpu:7.2f} s   "
              f"CPU RTF {total_cpu / seconds:.3f}")

    report("first run", runs[0])
    if len(runs) > 1:
        report(f"best of {len(runs)} runs (each stage's least CPU time)",
               {name: min((run[name] for run in runs), key=lambda tc: tc[1]) for name in runs[0]})
    print(f"  (SpeechSR-48k reference arithmetic: {sr_ref_t:.2f} s, RTF {sr_ref_t / seconds:.3f}; "
          f"speed-up {sr_ref_t / min(run['SpeechSR-48k (optimized)'][0] for run in runs):.2f}x)")
    if not args.no_flops:
        wav16, flops16 = count_flops(lambda: tts.synthesize(args.text, prompt, opts))
        with torch.no_grad():
            _, flops_sr = count_flops(lambda: sr_opt(torch.from_numpy(wav16).view(1, 1, -1)))
        rate = gemm_gflops_per_second(onednn_linear)
        floor = (flops16 + flops_sr) / (rate * 1e9) / (wav16.size / 16000)
        print(f"  counted arithmetic per second of audio: text -> 16 kHz {flops16 / 1e9 / (wav16.size / 16000):.1f} "
              f"GFLOP, SpeechSR-48k {flops_sr / 1e9 / (wav16.size / 16000):.1f} GFLOP; this CPU's float32 GEMM "
              f"(oneDNN, 1024^3, {plural(args.threads, 'thread')}) {rate:.0f} GFLOP/s: RTF floor {floor:.3f} for this "
              f"arithmetic (every counted operation at that rate, nothing else)")


if __name__ == "__main__":
    main()
