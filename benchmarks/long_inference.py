"""Time and peak memory of long inputs through the task API: 10,000 characters of TTS, 10 minutes of VC / SR.

Each case runs in its own process (so its peak resident memory, ``VmHWM``, is its own) and writes its
output with ``processors.audio.save_audio``. Reported per case: seconds of audio out, wall time, real-time
factor, resident memory after loading the models and at the peak.

* ``tts``  : HierSpeech++ zero-shot TTS (pipeline ``hierspeechpp_tts``), tiny random TTV + synthesizer,
  16 kHz; text = real sentences repeated to ``--chars`` characters (split into <= 300-character sentences).
* ``vits`` : VITS (pipeline ``vits``), tiny random model, same text.
* ``vc``   : HierSpeech++ VC (pipeline ``hierspeechpp``), tiny random synthesizer + random tiny SSL, YAAPT F0;
  source = real VCTK speech tiled to ``--minutes`` (converted in ``chunk_seconds`` pieces cut at pauses).
* ``sr``   : SpeechSR (pipeline ``speechsr``) with the released 48 kHz weights, same source.

The tiny random models make TTS/VC timings a measure of the pipeline's own overhead (front ends, F0, SSL,
chunking); SR uses the real released weights. Not a test: run by hand, e.g.::

    OMP_NUM_THREADS=1 python benchmarks/long_inference.py --cases tts vits vc sr --minutes 10 --chars 10000

Measured on the shared 2-core CPU box (one thread, load average ~9 from other jobs, so wall times are
inflated and noisy; memory is the point), after bounding oneDNN's primitive cache (models/base/pipeline.py):

| case | input | audio s | wall s | RSS after load MB | peak RSS MB |
|---|---|---|---|---|---|
| tts | 2,000 chars | 186 | 15 | 474 | 679 |
| tts | 10,000 chars | 920 | 121 | 474 | 949 |
| vits | 10,000 chars | 480 | 113 | 470 | 646 |
| vc | 2 min | 120 | 19 | 542 | 1273 |
| vc | 10 min | 600 | 300 | 573 | 1409 |
| sr (released 48 kHz) | 10 min | 600 | 1316 | 470 | 742 |

Before that bound, 10 min of VC peaked at 2538 MB and 10,000 characters of TTS at 1444 MB (oneDNN kept
buffers for every new input length); before SpeechSR ran long inputs window by window, 10 min of SR passed
4 GB (the interpolated 32-channel signal) and was stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "egs" / "mini" / "corpus"
PROMPT = CORPUS / "hierspeechpp_examples" / "reference_4.wav"
SENTENCES = ("When a man looks for something beyond his reach, his friends say he is looking for the pot of gold "
             "at the end of the rainbow. The army found the people in poverty and left them in comparative "
             "wealth. Thus did this humane and right minded father comfort his unhappy daughter. ")


def _rss_mb() -> float:
    from utils.memory import peak_rss_mb

    return peak_rss_mb()  # not ru_maxrss: a subprocess inherits its parent's peak there


def _source(minutes: float):
    import numpy as np

    from processors.audio import load_audio

    clips = [load_audio(p, 16000) for p in sorted((CORPUS / "vctk").rglob("*.wav"))]
    speech = np.concatenate(clips)
    total = int(minutes * 60 * 16000)
    return np.tile(speech, -(-total // speech.size))[:total]


def _text(chars: int) -> str:
    return (SENTENCES * (chars // len(SENTENCES) + 1))[:chars]


def _tiny_checkpoints(tmp: Path) -> None:
    import torch

    from models.base.checkpoint import save_checkpoint
    from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
    from models.tts.vits.config import VITSConfig
    from models.tts.vits.model import VITS
    from models.ttv.hierspeechpp_ttv.model import TextToVec
    from utils.config import to_dict

    torch.manual_seed(0)
    synth = HierSpeechPPSynthesizer.from_config({"hidden_channels": 32, "filter_channels": 64,
                                                 "upsample_initial_channel": 64, "resblock_kernel_sizes": [3],
                                                 "resblock_dilation_sizes": [[1, 3, 5]], "ssl_channels": 32})
    ttv = TextToVec.from_config({"inter_channels": 16, "hidden_channels": 16, "ssl_channels": 32})
    save_checkpoint(tmp / "syn" / "checkpoints", 1, models={"generator": synth},
                    config={"model_type": "hierspeechpp", "model": to_dict(synth.config),
                            "data": {"ssl": {"random_tiny_dim": 32, "layer": 2}}})
    save_checkpoint(tmp / "ttv" / "checkpoints", 1, models={"ttv": ttv},
                    config={"model_type": "hierspeechpp_ttv", "model": to_dict(ttv.config)})
    vits_cfg = VITSConfig(inter_channels=8, hidden_channels=8, filter_channels=16, n_heads=2, n_layers=1,
                          resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[8, 8, 4],
                          upsample_initial_channel=16, upsample_kernel_sizes=[16, 16, 8])
    save_checkpoint(tmp / "vits" / "checkpoints", 1, models={"generator": VITS.from_config(vits_cfg)},
                    config={"model_type": "vits", "model": to_dict(vits_cfg),
                            "data": {"sample_rate": 22050, "hop_length": 256, "filter_length": 1024,
                                     "win_length": 1024}})


def run_case(case: str, minutes: float, chars: int, tmp: Path) -> dict:
    """Inside the child process: load, run, write; return the measurements."""
    import torch

    from models.base.pipeline import load_pipeline
    from models.base.tasks import Audio
    from processors.audio import save_audio

    torch.set_num_threads(1)
    if case == "tts":
        pipe = load_pipeline({"pipeline": "hierspeechpp_tts",
                              "components": {"ttv": str(tmp / "ttv"), "synthesizer": str(tmp / "syn")}})
        job = lambda: pipe.synthesize([_text(chars)], prompts=[PROMPT])[0]  # noqa: E731
    elif case == "vits":
        pipe = load_pipeline(tmp / "vits")
        job = lambda: pipe.synthesize([_text(chars)])[0]  # noqa: E731
    else:
        source = Audio(_source(minutes), 16000)
        pipe = load_pipeline(tmp / "syn") if case == "vc" else \
            load_pipeline({"pipeline": "speechsr", "infer": {"target_rate": 48000}})
        job = (lambda: pipe.convert([source], [PROMPT])[0]) if case == "vc" else \
            (lambda: pipe.upsample([source])[0])  # noqa: E731
    loaded = _rss_mb()
    start = time.perf_counter()
    out = job()
    save_audio(tmp / f"{case}.wav", out.waveform, out.sample_rate)
    wall = time.perf_counter() - start
    seconds = out.waveform.size / out.sample_rate
    return {"case": case, "input": f"{chars} chars" if case in ("tts", "vits") else f"{minutes:g} min",
            "audio_s": round(seconds, 1), "wall_s": round(wall, 1), "rtf": round(wall / max(seconds, 1e-9), 3),
            "rss_loaded_mb": round(loaded), "rss_peak_mb": round(_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["tts", "vits", "vc", "sr"], choices=["tts", "vits", "vc", "sr"])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    parser.add_argument("--chars", type=int, nargs="+", default=[10000])
    parser.add_argument("--child", nargs=4, metavar=("CASE", "MINUTES", "CHARS", "TMP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, minutes, chars, tmp = args.child
        print(json.dumps(run_case(case, float(minutes), int(chars), Path(tmp))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        _tiny_checkpoints(Path(tmp))
        print("| case | input | audio s | wall s | RTF | RSS after load MB | peak RSS MB |\n|---|---|---|---|---|---|---|")
        for case in args.cases:
            sizes = [(0.0, c) for c in args.chars] if case in ("tts", "vits") else [(m, 0) for m in args.minutes]
            for minutes, chars in sizes:
                proc = subprocess.run([sys.executable, __file__, "--child", case, str(minutes), str(chars), tmp],
                                      capture_output=True, text=True, check=True)
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"| {r['case']} | {r['input']} | {r['audio_s']} | {r['wall_s']} | {r['rtf']} | "
                      f"{r['rss_loaded_mb']} | {r['rss_peak_mb']} |", flush=True)


if __name__ == "__main__":
    main()
