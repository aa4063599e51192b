"""What int8 costs for HierSpeech++: `echelon-export onnx` (float32) vs `--quantize int8` (onnxruntime dynamic
quantisation), speed and quality, on onnxruntime.

**SpeechSR-24k / -48k** (the bundled released weights) on real speech (``--clips``: a folder of recordings, by
default the repo's 16 kHz VCTK clips ``egs/mini/corpus/vctk``; others are brought to 16 kHz with the project's
soxr resampling), each centre-cropped to ``--seconds``: the torch default path (:class:`SpeechSRInference`, fast
mode), the float32 graph, and int8 graphs: every Conv quantised (what ``--quantize int8`` writes) and two partial
ones (the residual blocks' dense convs only; the anti-aliasing low-pass filters only), and static int8 (activation
ranges fixed from ``--calibration_clips``) of every Conv and of the residual blocks' convs. The transposed convolutions
(the activations' zero-stuffing up-samplers) are never quantised: onnxruntime's dynamic quantisation has no
ConvTranspose. Quality, against the float32 graph's output: log-spectral distance
(:func:`evaluation.spectral.log_spectral_distance`) over the full band and above 8 kHz (the band SpeechSR adds),
and the energy-weighted SNR above 8 kHz; against the recording itself, when its rate reaches the output's (e.g.
VCTK's 48 kHz originals), the LSD above 8 kHz; and DNSMOS P.835 (which scores at 16 kHz, so it hears only the
input's band). No Whisper WER: Whisper hears 16 kHz, where the outputs differ least.

**Synthesizer VC graph and TTV graph**: no trained weights are available offline, so only speed is measured,
on the full-size configurations with seeded random weights (the arithmetic does not depend on the values):
the torch default path, float32, int8 (Conv + MatMul), Conv only, MatMul only, static int8 (calibrated on two
random inputs). Their quality under int8 is not measured.

Speed: summed compute time over the inputs, every variant interleaved per input, best of ``--repeats`` passes,
CPU time (user + sys) beside wall time, ``--threads`` intra-op threads. The figures depend on the machine's load
(see benchmarks/README.md).

Usage: python benchmarks/hierspeechpp_int8_quality.py [--threads 1] [--repeats 2] [--utterances 10]
       [--seconds 3] [--rates 24000 48000] [--parts sr synthesizer] [--clips DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.study_common import (BAND, CLIPS, INPUT_RATE, Clip, band_snr, dnsmos_means,  # noqa: E402
                                     interleaved_best, megabytes, print_table, speech_clips)
from evaluation.dnsmos import DNSMOS  # noqa: E402
from evaluation.spectral import log_spectral_distance  # noqa: E402
from models.base import onnx_backend  # noqa: E402
from models.sr.speechsr.inference import SpeechSRInference  # noqa: E402
from models.sr.speechsr.onnx_export import export_checkpoint as export_speechsr  # noqa: E402
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer  # noqa: E402
from models.tts.hierspeechpp.onnx_export import export_vc  # noqa: E402
from models.ttv.hierspeechpp_ttv.model import TextToVec  # noqa: E402
from models.ttv.hierspeechpp_ttv.onnx_export import export_ttv  # noqa: E402
from utils.wording import plural  # noqa: E402

CALIBRATION_CLIPS, CALIBRATION_SECONDS = 8, 1.0  # static int8: ranges of every activation from these


def outside_resblocks(node: str) -> bool:
    """The first and last convs and the anti-aliasing low-pass filters (not the residual blocks' dense convs)."""
    return "lowpass" in node or "conv_pre" in node or "conv_post" in node


# name -> (op types, which Conv nodes stay float32 given a node's name); "static" in a name: calibrated ranges
SR_VARIANTS: Dict[str, tuple] = {
    "int8 (all Conv)": (("MatMul", "Conv"), lambda node: False),
    "int8 static (all Conv)": (("MatMul", "Conv"), lambda node: False),
    "int8 resblock convs": (("Conv",), outside_resblocks),
    "int8 static resblock convs": (("Conv",), outside_resblocks),
    "int8 low-pass only": (("Conv",), lambda node: "lowpass" not in node),
}
SYNTH_VARIANTS: Dict[str, tuple] = {
    "int8 (Conv + MatMul)": ("MatMul", "Conv"),
    "int8 static (Conv + MatMul)": ("MatMul", "Conv"),
    "int8 Conv only": ("Conv",),
    "int8 MatMul only": ("MatMul",),
}


def quantized_copy(graph: Path, name: str, op_types: Sequence[str],
                   keep_float: Callable[[str], bool] = lambda name: False,
                   calibration: Optional[List[Dict[str, np.ndarray]]] = None) -> Path:
    """A quantised copy of ``graph``: dynamic, or static when ``name`` says so (calibrated on ``calibration``)."""
    out = graph.with_name(f"{graph.stem}-{name.replace(' ', '_').replace('(', '').replace(')', '')}.onnx")
    shutil.copy(graph, out)
    convs = [n.name for n in onnx.load(str(graph), load_external_data=False).graph.node if n.op_type == "Conv"]
    return onnx_backend.quantize_int8(out, op_types, exclude_nodes=[n for n in convs if keep_float(n)],
                                      calibration=calibration if "static" in name else None)


def speechsr_study(rate: int, clips: List[Clip], calibration: List[Clip], tmp: Path, threads: int, repeats: int,
                   dnsmos) -> None:
    f32 = export_speechsr(None, tmp / f"sr{rate // 1000}k.onnx", target_rate=rate)[0]
    graphs = {"onnxruntime float32": f32}
    feeds = [{"audio": clip.input[None, None]} for clip in calibration]
    graphs.update({name: quantized_copy(f32, name, ops, keep, feeds) for name, (ops, keep) in SR_VARIANTS.items()})
    torch_sr = SpeechSRInference.pretrained()
    runners = {"torch (default path)": lambda x: torch_sr.upsample(x, rate)}
    for name, path in graphs.items():
        session = onnx_backend.session(path, threads)
        runners[name] = lambda x, s=session: s.run(None, {"audio": x[None, None]})[0].reshape(-1)
    best, outputs = interleaved_best(runners, [clip.input for clip in clips], repeats)
    base = outputs["onnxruntime float32"]
    recordings = [clip.recording(rate) for clip in clips]
    rows = []
    for name in runners:
        ys = outputs[name]
        lsd = [np.mean([log_spectral_distance(y, r, rate, min_hz=hz) for y, r in zip(ys, base)]) for hz in (0, BAND)]
        snr = np.mean([band_snr(y, r, rate, BAND) for y, r in zip(ys, base)]) if ys is not base else np.inf
        real = [log_spectral_distance(y, r, rate, min_hz=BAND) for y, r in zip(ys, recordings) if r is not None]
        mos = dnsmos_means(dnsmos, ys, rate)
        rows.append((name, f"{megabytes(graphs[name]):.2f}" if name in graphs else "-", best[name][0], best[name][1],
                     f"{best[name][1] / best['onnxruntime float32'][1]:.2f}", lsd[0], lsd[1], f"{snr:.1f}",
                     f"{np.mean(real):.3f}" if real else "-", f"{mos['ovrl']:.2f}", f"{mos['sig']:.2f}",
                     f"{mos['bak']:.2f}"))
    print(f"\nSpeechSR-{rate // 1000}k: {len(clips)} clips, {sum(c.samples for c in clips) / INPUT_RATE:.1f} s of "
          f"16 kHz input, {plural(threads, 'thread')}, best of {repeats}; LSD and SNR to the float32 graph's output, "
          f"means over clips; the last LSD to the recording itself ({sum(r is not None for r in recordings)} clips)")
    print_table(["path", "MB", "wall s", "CPU s", "CPU / f32", "LSD", "LSD > 8k", "SNR > 8k dB",
                 "LSD > 8k to recording", "DNSMOS OVRL", "SIG", "BAK"], rows)


def synthesizer_inputs(seconds: float, seed: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
    """Feeds of the ``vc`` and ``ttv`` graphs for ``seconds`` of speech (3 s prompt); values seeded random."""
    rng = np.random.default_rng(seed)
    frames, prompt = int(seconds * 50), 150  # 50 frames/s (hop 320 at 16 kHz)
    mel = rng.standard_normal((1, 80, prompt)).astype(np.float32)
    vc = {"ssl": rng.standard_normal((1, 1024, frames)).astype(np.float32),
          "log_f0": (rng.random((1, 1, 4 * frames)) * 5.0).astype(np.float32), "prompt_mel": mel,
          "noise": np.zeros((1, 192, frames), np.float32), "noise_scale": np.array([0.333], np.float32)}
    symbols = int(seconds * 20) | 1  # ~10 phonemes/s, blank-interleaved
    # zero noise: one length per graph; random weights predict ~1 frame per symbol, the length scale brings the
    # output to ~``seconds`` (~2.5 frames per symbol, as in real speech)
    ttv = {"input": rng.integers(1, 178, (1, symbols)).astype(np.int64), "prompt_mel": mel,
           "scales": np.array([0.0, frames / symbols, 0.0], np.float32)}
    return {"vc": vc, "ttv": ttv}


def torch_runner(graph: str, model) -> Callable[[Dict[str, np.ndarray]], List[np.ndarray]]:
    """The torch default path computing what graph ``graph`` does, on the same feeds (``model`` prepared)."""
    def run(feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        t = {name: torch.from_numpy(value) for name, value in feed.items()}
        with torch.inference_mode():
            g = model.style(t["prompt_mel"], torch.tensor([t["prompt_mel"].shape[2]]))
            if graph == "vc":
                wav = model.convert(t["ssl"], torch.tensor([t["ssl"].shape[2]]), t["log_f0"], g,
                                    float(t["noise_scale"][0]), noise=t["noise"])["wav"]
                return [wav.numpy()]
            scales = t["scales"].tolist()
            w2v, pitch, _ = model.generate(t["input"], torch.tensor([t["input"].shape[1]]), g, noise_scale=scales[0],
                                           length_scale=scales[1], noise_scale_w=scales[2])
            return [w2v.numpy(), pitch.numpy()]
    return run


def synthesizer_study(tmp: Path, seconds: float, threads: int, repeats: int) -> None:
    torch.manual_seed(1234)
    models = {"vc": HierSpeechPPSynthesizer.from_config({}), "ttv": TextToVec.from_config({})}
    f32 = {"vc": export_vc(models["vc"], tmp / "vc.onnx"), "ttv": export_ttv(models["ttv"], tmp / "ttv.onnx")}
    models["vc"].prepare_for_inference()  # the export took the plain path; the pipelines run the fast one
    feeds = synthesizer_inputs(seconds)
    for graph, path in f32.items():
        paths = {"float32": path}
        calibration = [synthesizer_inputs(1.0, seed)[graph] for seed in (1, 2)]
        paths.update({name: quantized_copy(path, name, ops, calibration=calibration)
                      for name, ops in SYNTH_VARIANTS.items()})
        runners, load = {"torch (default path)": torch_runner(graph, models[graph])}, {}
        for name, p in paths.items():
            start = time.perf_counter()
            session = onnx_backend.session(p, threads)
            load[name] = time.perf_counter() - start
            runners[name] = lambda feed, s=session: s.run(None, feed)
        best, outputs = interleaved_best(runners, [feeds[graph]], repeats)
        rows = []
        for name in runners:
            out = outputs[name][0][0]
            finite = all(np.isfinite(o).all() for o in outputs[name][0])
            rows.append((name, f"{megabytes(paths[name]):.1f}" if name in paths else "-",
                         f"{load[name]:.1f}" if name in load else "-", best[name][0], best[name][1],
                         f"{best[name][1] / best['float32'][1]:.2f}", "x".join(map(str, out.shape)),
                         "yes" if finite else "NO"))
        given = {"vc": f"{feeds['vc']['ssl'].shape[2]} frames", "ttv": f"{feeds['ttv']['input'].shape[1]} symbols"}
        print(f"\nHierSpeech++ {graph} graph, full-size config, random weights (quality not measured), "
              f"{given[graph]} in (50 frames/s), {plural(threads, 'thread')}, best of {repeats}")
        print_table(["graph", "MB", "session s", "wall s", "CPU s", "CPU / f32", "first output", "finite"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="per SpeechSR clip; the synthesizer's output")
    parser.add_argument("--rates", type=int, nargs="+", default=[24000, 48000])
    parser.add_argument("--parts", nargs="+", choices=["sr", "synthesizer"], default=["sr", "synthesizer"])
    parser.add_argument("--clips", type=Path, default=CLIPS, help="folder of 16 kHz (or any rate) speech .wav")
    parser.add_argument("--calibration_clips", type=Path, default=CLIPS,
                        help="speech the static int8 graphs are calibrated on (keep it apart from --clips)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if "sr" in args.parts:
            clips, dnsmos = speech_clips(args.clips, args.utterances, args.seconds), DNSMOS()
            calibration = speech_clips(args.calibration_clips, CALIBRATION_CLIPS, CALIBRATION_SECONDS)
            for rate in args.rates:
                speechsr_study(rate, clips, calibration, Path(tmp), args.threads, args.repeats, dnsmos)
        if "synthesizer" in args.parts:
            synthesizer_study(Path(tmp), args.seconds, args.threads, args.repeats)


if __name__ == "__main__":
    main()
