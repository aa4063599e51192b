"""HierSpeech++ zero-shot VC speed (16 kHz output): Echelon's inference path vs. the official arithmetic.

Stages timed separately on the same real speech (a source tiled to ``--seconds``, a 3 s prompt):

* **F0** — YAAPT (official settings) on the padded source and on the prompt, as the official ``VC()`` does;
* **SSL** — MMS-300m features, layer 7;
* **synth** — prompt log-mel + style encoder + ``enc_p_l → flow_l⁻¹ → flow⁻¹ → sn → dec``.

Modes, run alternately; each stage's minimum over ``--repeats`` runs is reported and the total is their sum:

* ``official`` — the official arithmetic: amfm_decompy's YAAPT as shipped, weight norm recomputed in every
  forward, the reference anti-aliasing path (up-sample → act → down-sample as separate convolutions), and all
  24 SSL layers computed with ``output_hidden_states`` and ``hidden_states[7]`` picked, as ``Wav2vec2`` in the
  official code does;
* ``echelon`` — YAAPT without its per-frame interpreter overhead (``processors/yaapt_fast.py``, identical F0),
  the SSL encoder truncated after layer 7 (``processors.ssl``; linear layers and its time-major front end through
  oneDNN, ``modules/onednn_linear.py``) and ``prepare_for_inference()``: weight norm folded, AMP blocks in
  channels-last memory with the fused anti-aliased SnakeBeta kernel (``modules/fused_snake.py``), the flows'
  linear layers and MLPs as oneDNN GEMMs. With >= 2 threads F0 runs in a worker thread beside SSL (whose conv
  front end then uses one thread fewer)
  ("F0+SSL" column), as the VC pipeline does.

CPU s is the process CPU time of a whole run (all threads): on a shared machine it is steadier than wall time.

Both modes share the same (random) weights and noise, so their waveforms must agree (max |diff| printed).
Weights are random unless ``--ssl-model`` points at a local MMS copy: compute does not depend on the values.
The official code's 16 kHz path took ~4.9 s for 5 s on one thread of this machine type (blueprint §8.3).

Arithmetic: each mode's FLOPs per stage are counted once at torch's dispatcher (``utils.flops``: matrix products,
convolutions, attention; element-wise work, FFTs and numba kernels such as YAAPT are left out). Each thread
count's table is followed by the rate at which each mode ran its arithmetic, and the 1-thread table also by
this CPU's oneDNN float32 GEMM rate and the largest speed-up that Echelon's counted arithmetic allows at that
rate. On CPUs where MKL (the official arithmetic's GEMMs) and oneDNN reach the same FMA ceiling, only removed
arithmetic counts, and the bound shows it. Such CPUs are AVX2 cores and Zen 4, whose AVX-512 runs on 256-bit
units. ``--no-flops`` skips this.

With ``--onnxruntime`` a third mode, ``onnxrt``, runs echelon's F0 and SSL and the synthesizer's exported graphs on
onnxruntime (the VC pipeline's ``backend="onnxruntime"``).

Usage: python benchmarks/hierspeechpp_vc_speed.py [--seconds 5] [--threads 1 2] [--repeats 2] [--profile]
       [--onnxruntime] [--no-flops]
"""

from __future__ import annotations

import argparse
import atexit
import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.tts.hierspeechpp.config import HierSpeechPPConfig  # noqa: E402
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer  # noqa: E402
from models.tts.hierspeechpp.onnx_export import export_runtime  # noqa: E402
from models.tts.hierspeechpp.onnx_runtime import OnnxSynthesizer  # noqa: E402
from processors.audio import load_audio  # noqa: E402
from processors.f0 import extract_f0, vc_log_f0, vc_pad_source  # noqa: E402
from processors.spectrogram import HierSpeechLogMel  # noqa: E402
from modules.onednn_linear import linear as onednn_linear  # noqa: E402
from processors.ssl import SSLFeatureExtractor, official_ssl_input, ssl_front_end_beside  # noqa: E402
from utils.devices import cpu_summary  # noqa: E402
from utils.flops import count_flops, gemm_gflops_per_second, speed_up_bound  # noqa: E402
from utils.threads import run_beside  # noqa: E402
from utils.wording import plural  # noqa: E402

CORPUS = ROOT / "egs" / "mini" / "corpus"
DEFAULT_SOURCE = CORPUS / "vctk" / "p225" / "p225_003.wav"
DEFAULT_PROMPT = CORPUS / "hierspeechpp_examples" / "reference_1.wav"
OFFICIAL_SECONDS_1T = 4.88  # official 16 kHz VC (F0 + MMS + synthesizer), 5 s audio, 1 thread (blueprint §8.3)
SSL_LAYER = 7


def mms_300m_config():
    """The facebook/mms-300m architecture (24 pre-LN layers, 1024-d, 7-layer conv front end, layer norm)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=True,
        feat_extract_norm="layer", feat_extract_activation="gelu", do_stable_layer_norm=True,
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, hidden_act="gelu",
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
    )  # fmt: skip


def build_ssl_models(ssl_model: str) -> Tuple[torch.nn.Module, SSLFeatureExtractor, str]:
    """(full 24-layer model, layer-7 extractor sharing its weights, description)."""
    from transformers import Wav2Vec2Model

    if ssl_model:
        full = Wav2Vec2Model.from_pretrained(ssl_model, local_files_only=True)
        what = f"pretrained {ssl_model}"
    else:
        torch.manual_seed(0)
        full = Wav2Vec2Model(mms_300m_config())
        what = "RANDOMLY INITIALISED wav2vec2 with the facebook/mms-300m architecture (weights unavailable offline)"
    full.eval().requires_grad_(False)
    truncated = SSLFeatureExtractor(copy.deepcopy(full), SSL_LAYER, name="mms-300m", full_layers=24)
    return full, truncated, what


def speech(path: Path, seconds: float) -> np.ndarray:
    wav = load_audio(path, 16000)
    n = int(round(seconds * 16000))
    return np.tile(wav, -(-n // len(wav)))[:n].astype(np.float32)


class Pipeline:
    """One VC configuration; ``run()`` returns (waveform, {stage: seconds})."""

    def __init__(self, model: HierSpeechPPSynthesizer, ssl_fn: Callable[[torch.Tensor], torch.Tensor],
                 source: np.ndarray, prompt: np.ndarray, device: torch.device, fast_f0: bool,
                 ssl_module: Optional[torch.nn.Module] = None, runtime: Optional[OnnxSynthesizer] = None):
        self.model, self.ssl_fn, self.device, self.fast_f0 = model, ssl_fn, device, fast_f0
        self.runtime = runtime  # the synthesizer's graphs on onnxruntime (the pipelines' backend="onnxruntime")
        self.ssl_module = ssl_module
        self.source, self.prompt = source, prompt
        self.mel = HierSpeechLogMel().to(device)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _f0(self, padded: np.ndarray) -> torch.Tensor:
        return vc_log_f0(extract_f0(padded, 16000, fast=self.fast_f0), extract_f0(self.prompt, 16000, fast=self.fast_f0))

    @torch.inference_mode()
    def _ssl(self, frames: int) -> torch.Tensor:
        ssl_in = official_ssl_input(torch.from_numpy(self.source).unsqueeze(0)).to(self.device)
        feats = self.ssl_fn(ssl_in)[..., :frames]
        self._sync()
        return feats

    @torch.inference_mode()
    def run(self, beside: bool = False) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Wall seconds per stage ("F0", "SSL" one after the other, or "F0+SSL" with ``beside``: F0 in a worker
        thread while SSL runs, as the VC pipeline does with >= 2 threads), "synth", and "cpu" (process CPU s)."""
        times: Dict[str, float] = {}
        cpu0 = time.process_time()
        padded = vc_pad_source(self.source)
        frames = padded.shape[-1] // 320
        if beside:
            t0 = time.perf_counter()
            with ssl_front_end_beside(self.ssl_module, self.device.type == "cpu"):  # as the VC pipeline does
                log_f0, feats = run_beside(lambda: self._f0(padded), lambda: self._ssl(frames))
            times["F0+SSL"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            log_f0 = self._f0(padded)
            times["F0"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            feats = self._ssl(frames)
            times["SSL"] = time.perf_counter() - t0
            times["F0+SSL"] = times["F0"] + times["SSL"]

        t0 = time.perf_counter()
        f0 = log_f0.reshape(1, 1, -1)[..., : 4 * frames].to(self.device)
        prompt = torch.from_numpy(self.prompt).to(self.device).unsqueeze(0)
        mel = self.mel(torch.cat([prompt, prompt]))
        mel_len = torch.full((2,), mel.size(-1), device=self.device)
        lengths = torch.tensor([frames], device=self.device)
        noise = torch.zeros(1, self.model.config.inter_channels, frames, device=self.device)
        if self.runtime is not None:
            g = self.runtime.style(mel[:1], mel_len[:1])
            wav = self.runtime.convert(feats, lengths, f0, g, 0.333, noise=noise)["wav"]
        else:
            wav = self.model.voice_conversion_noise_control(feats, lengths, mel, mel_len, f0, noise_scale=0.333,
                                                            denoise_ratio=0.0, noise=noise)
        self._sync()
        times["synth"] = time.perf_counter() - t0
        times["total"] = times["F0+SSL"] + times["synth"]
        times["cpu"] = time.process_time() - cpu0
        return wav.float().cpu(), times


    def stage_flops(self) -> Dict[str, int]:
        """FLOPs of one run, counted (``utils.flops``): {"SSL": ..., "synth": ...}; synth is the run's total less
        the SSL stage (F0 has no counted operators)."""
        frames = vc_pad_source(self.source).shape[-1] // 320
        _, ssl = count_flops(lambda: self._ssl(frames))
        _, total = count_flops(self.run)
        return {"SSL": ssl, "synth": total - ssl}


def print_arithmetic(flops: Dict[str, Dict[str, int]], best: Dict[str, Dict[str, float]], threads: int,
                     seconds: float) -> None:
    """Counted GFLOP per stage and the rate each mode ran them at; at 1 thread also this CPU's GEMM rate and the
    speed-up bound it sets for echelon's arithmetic."""
    print(f"{'mode':>9} {'SSL GFLOP':>10} {'synth GFLOP':>12} {'total GFLOP':>12} {'SSL GFLOP/s':>12} "
          f"{'synth GFLOP/s':>14}")
    for mode, count in flops.items():
        ssl_rate = f"{count['SSL'] / best[mode]['SSL'] / 1e9:12.1f}" if "SSL" in best[mode] else f"{'beside':>12}"
        print(f"{mode:>9} {count['SSL'] / 1e9:10.1f} {count['synth'] / 1e9:12.1f} "
              f"{(count['SSL'] + count['synth']) / 1e9:12.1f} {ssl_rate} "
              f"{count['synth'] / best[mode]['synth'] / 1e9:14.1f}")
    totals = {mode: count["SSL"] + count["synth"] for mode, count in flops.items()}
    print(f"official / echelon arithmetic: x{totals['official'] / totals['echelon']:.2f}")
    if threads == 1:
        rate = gemm_gflops_per_second(onednn_linear)
        bound = speed_up_bound(best["official"]["total"], totals["echelon"], best["echelon"]["F0"], rate)
        floor = best["echelon"]["F0"] + totals["echelon"] / (rate * 1e9)
        print(f"this CPU's float32 GEMM (oneDNN, 1024^3, 1 thread): {rate:.0f} GFLOP/s; echelon's F0 plus its "
              f"counted arithmetic at that rate take {floor:.2f} s (RTF {floor / seconds:.3f}): at most "
              f"x{bound:.2f} over the official arithmetic's {best['official']['total']:.2f} s without removing "
              f"arithmetic")


def official_ssl(full: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(wav: torch.Tensor) -> torch.Tensor:  # all 24 layers computed, layer 7 picked
        return full(wav, output_hidden_states=True).hidden_states[SSL_LAYER].transpose(1, 2)

    return run


def echelon_ssl(extractor: SSLFeatureExtractor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda wav: extractor(wav)[0]


def profile_synth(pipeline: Pipeline, rows: int = 15) -> None:
    from torch.profiler import profile

    with profile() as prof:
        pipeline.run()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def exported_graphs(model: HierSpeechPPSynthesizer) -> Dict[str, Path]:
    """``model``'s runtime graphs (style, synthesis: what ``backend="onnxruntime"`` runs) in a temporary folder
    removed when the script exits."""
    folder = tempfile.mkdtemp(prefix="hsp_onnx_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    exported = HierSpeechPPSynthesizer.from_config(model.config).eval()  # the export folds weight norm in place
    exported.load_state_dict(model.state_dict())
    return export_runtime(exported, Path(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--prompt", type=Path, default=DEFAULT_PROMPT)
    parser.add_argument("--ssl-model", default="", help="local MMS-300m directory (default: random MMS-shaped)")
    parser.add_argument("--cuda", action="store_true", help="also time on CUDA when available")
    parser.add_argument("--profile", action="store_true", help="print the top operators of the echelon mode")
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also time the synthesizer's exported graphs on onnxruntime (mode 'onnxrt': echelon's "
                             "F0 and SSL, the backend='onnxruntime' synthesizer)")
    parser.add_argument("--no-flops", action="store_true",
                        help="skip counting each mode's arithmetic (GFLOP per stage, the rate it ran at, the bound)")
    parser.add_argument("--vocoder-precision", default="float32", choices=("float32", "bfloat16"),
                        help="echelon mode: the generator's AMP convolutions in this precision (bfloat16: opt-in, "
                             "not the reference numbers, so the wav diff is then ~1e-3)")
    args = parser.parse_args()

    source, prompt = speech(args.source, args.seconds), load_audio(args.prompt, 16000)
    torch.manual_seed(1234)
    official_model = HierSpeechPPSynthesizer.from_config(HierSpeechPPConfig()).eval()
    echelon_model = HierSpeechPPSynthesizer.from_config(HierSpeechPPConfig())
    echelon_model.load_state_dict(official_model.state_dict())
    echelon_model.prepare_for_inference(vocoder_precision=args.vocoder_precision)
    full_ssl, ssl7, ssl_what = build_ssl_models(args.ssl_model)
    params = sum(p.numel() for p in official_model.parameters())
    print(f"CPU: {cpu_summary()}")
    print(f"synthesizer: full size, {params / 1e6:.2f} M parameters, random weights; SSL: {ssl_what}")
    print(f"source {args.source.name} tiled to {args.seconds:.1f} s, prompt {args.prompt.name} "
          f"({len(prompt) / 16000:.1f} s); per-stage minimum of {args.repeats} runs, modes alternating")

    devices = [torch.device("cpu")]
    if args.cuda and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device in devices:
        pipes = {
            "official": Pipeline(official_model.to(device), official_ssl(full_ssl.to(device)), source, prompt, device,
                                 fast_f0=False),
            "echelon": Pipeline(echelon_model.to(device), echelon_ssl(ssl7.to(device)), source, prompt, device,
                                fast_f0=True, ssl_module=ssl7),
        }
        if args.onnxruntime and device.type == "cpu":
            graphs = exported_graphs(official_model)
            pipes["onnxrt"] = Pipeline(echelon_model, echelon_ssl(ssl7), source, prompt, device, fast_f0=True,
                                       ssl_module=ssl7)
        # counted once per device, on the one-thread path (utils.flops.count_flops)
        flops = {} if args.no_flops else {mode: pipe.stage_flops() for mode, pipe in pipes.items()
                                          if mode in ("official", "echelon")}
        for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(threads)
            if "onnxrt" in pipes:  # sessions are made for a thread count
                pipes["onnxrt"].runtime = OnnxSynthesizer(graphs, official_model.config, official_model.hop_length,
                                                          threads)
            beside = device.type != "cpu" or threads >= 2  # the VC pipeline's rule (utils.threads.side_by_side_pays)
            # Minimum of each stage over the repeats (robust to other processes' bursts on a shared machine);
            # the total is the sum of the stage minima. CPU seconds (all threads of the process) beside it.
            best: Dict[str, Dict[str, float]] = {mode: {} for mode in pipes}
            outputs = {}
            for _ in range(args.repeats):
                for mode, pipe in pipes.items():
                    wav, times = pipe.run(beside=beside and mode != "official")
                    outputs[mode] = wav
                    for stage, value in times.items():
                        best[mode][stage] = min(best[mode].get(stage, float("inf")), value)
            for times in best.values():
                times["total"] = times["F0+SSL"] + times["synth"]
            diff = float((outputs["official"] - outputs["echelon"]).abs().max())
            label = f"{device.type}" + (f", {plural(threads, 'thread')}" if device.type == "cpu" else "")
            print(f"\n[{label}] max |wav diff| = {diff:.2e}" + ("; echelon: F0 beside SSL" if beside else "")
                  + (f"; onnxrt vs official {float((outputs['official'] - outputs['onnxrt']).abs().max()):.2e}"
                     if "onnxrt" in outputs else ""))
            print(f"{'mode':>9} {'F0 s':>7} {'SSL s':>7} {'F0+SSL s':>9} {'synth s':>8} {'total s':>8} {'RTF':>6} {'CPU s':>6}")
            for mode, t in best.items():
                f0_ssl = [f"{t[k]:7.3f}" if k in t else f"{'beside':>7}" for k in ("F0", "SSL")]
                print(f"{mode:>9} {f0_ssl[0]} {f0_ssl[1]} {t['F0+SSL']:9.3f} {t['synth']:8.3f} {t['total']:8.3f} "
                      f"{t['total'] / args.seconds:6.3f} {t['cpu']:6.3f}")
            ratio = best["official"]["total"] / best["echelon"]["total"]
            cpu_ratio = best["official"]["cpu"] / best["echelon"]["cpu"]
            print(f"speed-up vs official arithmetic on this machine: x{ratio:.2f} wall, x{cpu_ratio:.2f} CPU time"
                  + (f"; vs the official code's {OFFICIAL_SECONDS_1T:.2f} s (1 thread, blueprint): "
                     f"x{OFFICIAL_SECONDS_1T * args.seconds / 5.0 / best['echelon']['total']:.2f}"
                     if device.type == "cpu" and threads == 1 else ""))
            if flops:
                print_arithmetic(flops, best, threads if device.type == "cpu" else 0, args.seconds)
            if args.profile:
                profile_synth(pipes["echelon"])


if __name__ == "__main__":
    main()
