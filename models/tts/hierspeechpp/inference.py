"""Zero-shot voice conversion with the HierSpeech++ synthesizer (16 kHz output).

Pipeline per (source, prompt) pair, following the official ``inference_vc.py``:

1. source: zero-padded to the next multiple of 1280 samples (+1280 if already one); F0 (YAAPT by default, or
   pyworld ``dio``/``harvest``) at 200 Hz; SSL layer-7 features of the padded source reflect-padded by 40.
2. prompt: F0 of the *unpadded* prompt gives the voiced mean/std the source F0 is moved to (z-normalise the
   voiced source F0, rescale, clip at 0, then ln(F0+1)); prompts shorter than ``min_prompt_seconds`` are
   replicated (HierSpeech++ "style prompt replication"); the log-mel of [prompt, denoised prompt] gives two
   style vectors mixed as ``(1 - denoise_ratio) * g + denoise_ratio * g_denoised``. The denoiser is a hook
   (any callable ``(N,) tensor -> (N',) tensor`` at 16 kHz); none ships, so ``denoise_ratio > 0`` needs one.
3. synthesizer: enc_p_l -> flow_l^-1 -> flow^-1 -> sn -> dec with prior temperature ``noise_scale``.
4. output: trimmed to the source length (the official script keeps the padding) and level-normalised:
   ``max`` (peak 0.999, official default), ``prompt`` (peak of the prompt) or ``none``.

Many pairs run in batches; with the default masked padding an item's output does not depend on its batch,
and the prior noise of pair ``i`` is drawn from ``seed + i``, so results are identical batched or not.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from models.base import checkpoint as ckpt
from models.base.inference import BaseInference
from models.tts.hierspeechpp.checkpoint import load_official_checkpoint, load_state_dict_strict
from models.tts.hierspeechpp.config import HierSpeechPPConfig
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from processors.audio import AudioError, load_audio, save_audio
from processors.f0 import align_f0_length, extract_f0, vc_log_f0, vc_pad_source
from processors.spectrogram import HierSpeechLogMel
from processors.ssl import DEFAULT_SSL_LAYER, DEFAULT_SSL_MODEL, SSLFeatureExtractor, build_random_ssl, official_ssl_input
from utils.config import validate
from utils.registry import register

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
F0_HOP = 80  # samples per F0 frame (5 ms)
DENOISE_PAD_MULTIPLE = 1600  # official: the MP-SENet denoiser wants multiples of its 400 hop and ours of 320

Denoiser = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class VCOptions:
    noise_scale: float = 0.333  # prior temperature (0.333 robust, 0.667 expressive)
    denoise_ratio: float = 0.0  # 0 = original prompt style only; needs a denoiser when > 0
    f0_method: str = "yaapt"  # yaapt (official) | dio | harvest
    scale_norm: str = "max"  # max | prompt | none
    min_prompt_seconds: float = 3.0  # shorter prompts are replicated
    batch_size: int = 4
    seed: int = 1111  # the official scripts' seed; pair i uses seed + i


def retargeted_log_f0(src_f0_hz: np.ndarray, trg_f0_hz: np.ndarray, frames: int) -> torch.Tensor:
    """The F0 handed to the synthesizer: source moved to the prompt's voiced mean/std, ln(F0+1), ``(frames,)``."""
    return align_f0_length(vc_log_f0(src_f0_hz, trg_f0_hz), frames)


def replicate_prompt(wav: np.ndarray, min_samples: int) -> np.ndarray:
    """Repeat a short prompt end to end until it lasts at least ``min_samples`` (whole copies)."""
    if wav.shape[-1] == 0:
        raise AudioError("empty prompt")
    if wav.shape[-1] >= min_samples:
        return wav
    copies = -(-min_samples // wav.shape[-1])
    return np.tile(wav, copies)


def normalize_level(wav: np.ndarray, mode: str, prompt_peak: float) -> np.ndarray:
    """Official output scaling: ``max`` -> peak 0.999, ``prompt`` -> the prompt's peak, ``none`` -> unchanged."""
    if mode == "none":
        return wav
    if mode not in ("max", "prompt"):
        raise ValueError(f"scale_norm must be 'max', 'prompt' or 'none', got {mode!r}")
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak <= 0.0:
        return wav
    target = 0.999 if mode == "max" else prompt_peak
    return (wav / peak * target).astype(np.float32)


@dataclass
class _Source:
    ssl_input: torch.Tensor  # (N' + 80,) padded + reflect-padded waveform
    f0_hz: np.ndarray  # (N' / 80,)
    frames: int  # N' / 320
    n_samples: int  # original length


@dataclass
class _Prompt:
    rows: torch.Tensor  # (2, N_p) original and denoised prompt (replicated if short)
    f0_hz: np.ndarray  # F0 of the unpadded, unreplicated prompt
    peak: float


class VoiceConverter:
    """Zero-shot VC around a :class:`HierSpeechPPSynthesizer` and an SSL feature extractor.

    Args:
        model: the synthesizer (prepared for inference here: eval, weight norm folded, polyphase filters).
        ssl: ``processors.ssl.SSLFeatureExtractor`` whose dim equals ``model.config.ssl_channels``.
        denoiser: optional prompt denoiser hook (see module docstring).
        device: where the networks run.
    """

    def __init__(self, model: HierSpeechPPSynthesizer, ssl: torch.nn.Module, denoiser: Optional[Denoiser] = None,
                 device: str | torch.device = "cpu"):
        if getattr(ssl, "dim", model.config.ssl_channels) != model.config.ssl_channels:
            raise ValueError(f"SSL features are {ssl.dim}-dim but the synthesizer expects "
                             f"ssl_channels={model.config.ssl_channels}")
        self.device = torch.device(device)
        self.model = model.to(self.device).prepare_for_inference()
        self.ssl = ssl.to(self.device).eval()
        self.denoiser = denoiser
        self.mel_fn = HierSpeechLogMel(sample_rate=SAMPLE_RATE, n_mels=model.config.n_mel_channels).to(self.device)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def build_ssl(model_id: str = DEFAULT_SSL_MODEL, layer: int = DEFAULT_SSL_LAYER,
                  random_tiny_dim: int = 0) -> torch.nn.Module:
        """Pretrained SSL stopped at ``layer`` (local cache/dir offline), or a random tiny one for tests."""
        if random_tiny_dim > 0:
            return build_random_ssl(layer=layer, num_layers=layer, hidden_size=random_tiny_dim)
        return SSLFeatureExtractor.from_pretrained(model_id, layer)

    @classmethod
    def from_official(cls, ckpt_path: str | Path, config_json: str | Path | None = None,
                      ssl: Optional[torch.nn.Module] = None, device: str = "cpu", **kwargs) -> "VoiceConverter":
        """Official ``.pth`` + its ``config.json`` (default: next to it); SSL defaults to MMS-300m layer 7."""
        model = load_official_checkpoint(ckpt_path, config_json)
        return cls(model, ssl if ssl is not None else cls.build_ssl(), device=device, **kwargs)

    @classmethod
    def from_echelon(cls, ckpt_dir: str | Path, ssl: Optional[torch.nn.Module] = None, device: str = "cpu",
                     **kwargs) -> "VoiceConverter":
        """Echelon checkpoint dir (``config.json`` + ``generator.safetensors``); SSL from its ``data.ssl``."""
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        raw = ckpt.read_config(path)
        cfg = validate(raw.get("model", {}), HierSpeechPPConfig, "model")
        model = HierSpeechPPSynthesizer.from_config(cfg)
        load_state_dict_strict(model, ckpt.load_model_weights(path, "generator"), str(path))
        if ssl is None:
            ssl_cfg = raw.get("data", {}).get("ssl", {})
            ssl = cls.build_ssl(ssl_cfg.get("model", DEFAULT_SSL_MODEL), ssl_cfg.get("layer", DEFAULT_SSL_LAYER),
                                ssl_cfg.get("random_tiny_dim", 0))
        return cls(model, ssl, device=device, **kwargs)

    # ------------------------------------------------------------------ front end
    def _source(self, wav: np.ndarray, f0_method: str) -> _Source:
        if wav.ndim != 1 or wav.size == 0:
            raise AudioError(f"source must be a non-empty mono waveform, got shape {wav.shape}")
        padded = vc_pad_source(wav.astype(np.float32))
        frames = padded.shape[-1] // self.model.hop_length
        f0 = extract_f0(padded, SAMPLE_RATE, method=f0_method)
        ssl_input = official_ssl_input(torch.from_numpy(wav.astype(np.float32)).unsqueeze(0))[0]
        return _Source(ssl_input, np.asarray(f0), frames, wav.shape[-1])

    def _prompt(self, wav: np.ndarray, opts: VCOptions) -> _Prompt:
        if wav.ndim != 1 or wav.size == 0:
            raise AudioError(f"prompt must be a non-empty mono waveform, got shape {wav.shape}")
        f0 = extract_f0(wav.astype(np.float32), SAMPLE_RATE, method=opts.f0_method)
        peak = float(np.abs(wav).max())
        prompt = torch.from_numpy(replicate_prompt(wav.astype(np.float32),
                                                   int(opts.min_prompt_seconds * SAMPLE_RATE)))
        if opts.denoise_ratio == 0:
            denoised = prompt
        elif self.denoiser is None:
            raise ValueError("denoise_ratio > 0 needs a denoiser hook (none ships with Echelon)")
        else:
            with torch.no_grad():
                padded = vc_pad_source(prompt, DENOISE_PAD_MULTIPLE).to(self.device)
                denoised = self.denoiser(padded).reshape(-1)[: prompt.shape[-1]].float().cpu()
            if denoised.shape[-1] != prompt.shape[-1]:
                raise ValueError(f"denoiser returned {denoised.shape[-1]} samples for a {prompt.shape[-1]}-sample prompt")
        return _Prompt(torch.stack([prompt, denoised]), f0, peak)

    # ------------------------------------------------------------------ conversion
    @torch.no_grad()
    def _convert_batch(self, sources: List[_Source], prompts: List[_Prompt], opts: VCOptions,
                       first_index: int) -> List[np.ndarray]:
        dev, batch = self.device, len(sources)
        inter = self.model.config.inter_channels
        # SSL: each item padded as officially, then zero-padded to the batch (frames past an item are masked).
        in_lens = torch.tensor([s.ssl_input.shape[-1] for s in sources])
        wav_in = torch.stack([F.pad(s.ssl_input, (0, int(in_lens.max()) - s.ssl_input.shape[-1])) for s in sources])
        feats, frames = self.ssl(wav_in.to(dev), in_lens.to(dev))
        lengths = torch.tensor([s.frames for s in sources], device=dev)
        if not torch.equal(frames.to(dev), lengths):
            raise RuntimeError(f"SSL frames {frames.tolist()} differ from padded-source frames {lengths.tolist()}")
        t_max = int(lengths.max())
        feats = feats[..., :t_max]
        log_f0 = torch.zeros(batch, 1, 4 * t_max, device=dev)
        noise = torch.zeros(batch, inter, t_max, device=dev)
        for b, (src, prm) in enumerate(zip(sources, prompts)):
            log_f0[b, 0, :4 * src.frames] = retargeted_log_f0(src.f0_hz, prm.f0_hz, 4 * src.frames).to(dev)
            gen = torch.Generator().manual_seed(opts.seed + first_index + b)
            noise[b, :, :src.frames] = torch.randn(inter, src.frames, generator=gen).to(dev)
        # Style rows: [originals..., denoised...] -> g = (1 - r) g + r g_denoised.
        rows = [p.rows[0] for p in prompts] + [p.rows[1] for p in prompts]
        row_lens = torch.tensor([r.shape[-1] for r in rows], device=dev)
        rows_t = torch.stack([F.pad(r, (0, int(row_lens.max()) - r.shape[-1])) for r in rows]).to(dev)
        mel, mel_lens = self.mel_fn(rows_t, row_lens)
        g = self.model.style(mel, mel_lens)
        g = (1 - opts.denoise_ratio) * g[:batch] + opts.denoise_ratio * g[batch:]
        wav = self.model.convert(feats, lengths, log_f0, g, opts.noise_scale, noise=noise)["wav"]
        outputs = []
        for b, (src, prm) in enumerate(zip(sources, prompts)):
            item = wav[b, 0, :src.n_samples].float().cpu().numpy()
            outputs.append(normalize_level(item, opts.scale_norm, prm.peak))
        return outputs

    def convert(self, sources: Sequence[np.ndarray], prompts: Sequence[np.ndarray],
                options: Optional[VCOptions] = None) -> List[np.ndarray]:
        """Convert each ``sources[i]`` to the voice of ``prompts[i]`` (or of the single prompt given).

        Waveforms are mono float32 at 16 kHz; returns one float32 waveform per source (same length).
        """
        opts = options or VCOptions()
        if len(prompts) == 1 and len(sources) > 1:
            prompts = list(prompts) * len(sources)
        if len(prompts) != len(sources):
            raise ValueError(f"{len(sources)} sources but {len(prompts)} prompts (give one or one per source)")
        if opts.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {opts.batch_size}")
        outputs: List[np.ndarray] = []
        for start in range(0, len(sources), opts.batch_size):
            stop = min(start + opts.batch_size, len(sources))
            src = [self._source(np.asarray(w), opts.f0_method) for w in sources[start:stop]]
            prm = [self._prompt(np.asarray(w), opts) for w in prompts[start:stop]]
            outputs.extend(self._convert_batch(src, prm, opts, start))
        return outputs

    def convert_files(self, pairs: Sequence[Tuple[str | Path, str | Path]], output_dir: str | Path,
                      options: Optional[VCOptions] = None) -> List[Path]:
        """Convert ``(source_wav, prompt_wav)`` file pairs; writes ``<source>_to_<prompt>.wav`` (16 kHz).

        Unreadable files are skipped and listed in ``bad_items.tsv``; what was written is returned.
        """
        opts = options or VCOptions()
        out_dir = Path(output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        good, sources, prompts, bad = [], [], [], []
        for src, prm in pairs:
            try:
                sources.append(load_audio(src, SAMPLE_RATE))
                prompts.append(load_audio(prm, SAMPLE_RATE))
                good.append((Path(src), Path(prm)))
            except (AudioError, FileNotFoundError) as err:
                sources, prompts = sources[:len(good)], prompts[:len(good)]
                bad.append(f"{src}\t{prm}\t{err}")
        written = []
        for (src, prm), wav in zip(good, self.convert(sources, prompts, opts) if good else []):
            written.append(save_audio(out_dir / f"{src.stem}_to_{prm.stem}.wav", wav, SAMPLE_RATE))
        if bad:
            (out_dir / "bad_items.tsv").write_text("\n".join(bad) + "\n", encoding="utf-8")
        return written


def add_vc_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``bins/vc.py`` and the generic ``bins/infer.py`` dispatch."""
    parser.add_argument("--source", nargs="+", default=[], help="source wav(s) (content)")
    parser.add_argument("--prompt", nargs="+", default=[], help="prompt wav: one for all sources, or one per source")
    parser.add_argument("--pairs", help="TSV file of 'source<TAB>prompt' lines (adds to --source/--prompt)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--noise_scale", type=float, default=0.333)
    parser.add_argument("--denoise_ratio", type=float, default=0.0)
    parser.add_argument("--f0_method", choices=["yaapt", "dio", "harvest"], default="yaapt")
    parser.add_argument("--scale_norm", choices=["max", "prompt", "none"], default="max")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1111)


def pairs_from_args(args: argparse.Namespace) -> List[Tuple[str, str]]:
    """Resolve ``--source/--prompt/--pairs`` into (source, prompt) pairs, with clear errors."""
    sources, prompts = list(args.source), list(args.prompt)
    if sources and len(prompts) == 1:
        prompts = prompts * len(sources)
    if len(sources) != len(prompts):
        raise SystemExit(f"error: {len(sources)} --source files but {len(prompts)} --prompt files")
    pairs = list(zip(sources, prompts))
    if args.pairs:
        for n, line in enumerate(Path(args.pairs).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                fields = line.split("\t")
                if len(fields) != 2:
                    raise SystemExit(f"error: {args.pairs}:{n}: expected 'source<TAB>prompt', got {line!r}")
                pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise SystemExit("error: nothing to convert (give --source and --prompt, or --pairs)")
    return pairs


def options_from_args(args: argparse.Namespace) -> VCOptions:
    return VCOptions(noise_scale=args.noise_scale, denoise_ratio=args.denoise_ratio, f0_method=args.f0_method,
                     scale_norm=args.scale_norm, batch_size=args.batch_size, seed=args.seed)


@register("inference", "hierspeechpp")
class HierSpeechPPInference(BaseInference):
    """``bins/infer.py`` entry: voice conversion from an Echelon checkpoint directory."""

    @classmethod
    def from_checkpoint(cls, ckpt_dir, device="cpu") -> "HierSpeechPPInference":
        converter = VoiceConverter.from_echelon(ckpt_dir, device=device)
        pipeline = cls(converter.model.config, {"generator": converter.model}, device)
        pipeline.converter = converter
        return pipeline

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_vc_arguments(parser)

    def run(self, args: argparse.Namespace) -> List[Path]:
        return self.converter.convert_files(pairs_from_args(args), args.output_dir, options_from_args(args))
