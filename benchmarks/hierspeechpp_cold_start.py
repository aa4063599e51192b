"""HierSpeech++ VC cold start: a fresh process's first conversion against its later (warm) ones.

Each run is a new Python process (``--runs`` of them, one after the other) that builds the full-size
synthesizer (random weights) and an MMS-300m-shaped SSL encoder (random weights, layer 7), then converts the
same 5 s source with a 3 s prompt ``--calls`` times, at ``--threads`` torch threads. It prints, per process,
wall and CPU seconds of the load (which includes ``VoiceConverter.warm_up()`` unless ``--no-warm-up``), of the
first call and of the best later call, and the first/warm ratio of both.

What a first call used to pay: importing YAAPT (amfm_decompy imports scipy.signal and scipy.stats), numba
starting its compiler target and loading the kernels from its on-disk cache - which never hit before, see
``modules/fused_snake.py`` - and oneDNN creating its kernels.

Usage: python benchmarks/hierspeechpp_cold_start.py [--runs 3] [--calls 3] [--threads 1] [--no-warm-up]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_process(calls: int, threads: int, warm_up: bool) -> dict:
    """Runs inside the fresh process: load, then ``calls`` conversions."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch

    torch.set_num_threads(threads)
    from hierspeechpp_vc_speed import DEFAULT_PROMPT, DEFAULT_SOURCE, mms_300m_config, speech
    from transformers import Wav2Vec2Model

    from models.tts.hierspeechpp.config import HierSpeechPPConfig
    from models.tts.hierspeechpp.inference import VoiceConverter
    from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
    from processors.audio import load_audio
    from processors.ssl import SSLFeatureExtractor

    wall, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(0)
    ssl = SSLFeatureExtractor(Wav2Vec2Model(mms_300m_config()), 7, name="mms-300m-shaped", full_layers=24)
    converter = VoiceConverter(HierSpeechPPSynthesizer.from_config(HierSpeechPPConfig()), ssl, warm_up=warm_up)
    result = {"load": (time.perf_counter() - wall, time.process_time() - cpu), "calls": []}
    source, prompt = speech(DEFAULT_SOURCE, 5.0), load_audio(DEFAULT_PROMPT, 16000)
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        converter.convert([source], [prompt])
        result["calls"].append((time.perf_counter() - wall, time.process_time() - cpu))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes")
    parser.add_argument("--calls", type=int, default=3, help="conversions per process (>= 2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false", help="skip VoiceConverter.warm_up()")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls < 2:
        parser.error("--calls must be at least 2 (a first call and a warm one)")
    if args.child:
        print(json.dumps(one_process(args.calls, args.threads, args.warm_up)))
        return
    sys.path.insert(0, str(ROOT))
    from utils.devices import cpu_summary  # imports nothing heavy: the parent stays light
    from utils.wording import plural

    print(f"CPU: {cpu_summary()}")
    print(f"{args.runs} fresh processes, {plural(args.threads, 'thread')}, warm-up at load: "
          f"{'on' if args.warm_up else 'off'}")
    print(f"{'run':>3} {'load s':>7} {'first s':>8} {'warm s':>7} {'first/warm':>10} {'load CPU':>9} {'first CPU':>9} "
          f"{'warm CPU':>8} {'first/warm CPU':>14}")
    command = [sys.executable, __file__, "--child", "--calls", str(args.calls), "--threads", str(args.threads)]
    if not args.warm_up:
        command.append("--no-warm-up")
    for run in range(args.runs):
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        first, warm = result["calls"][0], [min(c[i] for c in result["calls"][1:]) for i in (0, 1)]
        print(f"{run + 1:>3} {result['load'][0]:7.2f} {first[0]:8.2f} {warm[0]:7.2f} {first[0] / warm[0]:10.2f} "
              f"{result['load'][1]:9.2f} {first[1]:9.2f} {warm[1]:8.2f} {first[1] / warm[1]:14.2f}", flush=True)


if __name__ == "__main__":
    main()
