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

Task API (pipeline ``hierspeechpp``; components ``synthesizer`` = Echelon dir or official ``.pth``)::

    vc = load_pipeline("exp/hierspeechpp")                     # or {"pipeline": "hierspeechpp", ...}
    vc.convert(["src.wav"], ["voice.wav"])[0]                  # -> Audio at 16 kHz

Sources longer than ``chunk_seconds`` are converted in pieces cut at pauses (bounded memory), joined, then
level-normalised as a whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.base import checkpoint as ckpt
from models.base import onnx_backend
from models.base.infer_settings import InferSettings
from models.base.inference import InferenceError
from models.base.pipeline import PipelineMixin
from models.base.tasks import Audio, AudioInput, Capabilities, VoiceConversion, load_input
from models.base.waveforms import normalize_level, progress, replicate_prompt, split_points, synthetic_voice
from models.tts.hierspeechpp.checkpoint import load_echelon_synthesizer, load_official_checkpoint
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.tts.hierspeechpp.onnx_runtime import OnnxSynthesizer, runtime_for
from modules.vocoders.amp import set_vocoder_precision
from processors.audio import AudioError
from processors.f0 import align_f0_length, extract_f0, vc_log_f0, vc_pad_source
from processors.spectrogram import HierSpeechLogMel
from processors.ssl import (DEFAULT_SSL_LAYER, DEFAULT_SSL_MODEL, SSLFeatureExtractor, build_random_ssl,
                            official_ssl_input, ssl_front_end_beside)
from utils.memory import release_freed_memory
from utils.registry import register
from utils.threads import run_beside, side_by_side_pays

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
F0_HOP = 80  # samples per F0 frame (5 ms)
DENOISE_PAD_MULTIPLE = 1600  # official: the MP-SENet denoiser wants multiples of its 400 hop and ours of 320

Denoiser = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class VCOptions(InferSettings):
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


@dataclass
class _Source:
    ssl_input: torch.Tensor  # (N' + 80,) padded + reflect-padded waveform
    padded: np.ndarray  # (N',) zero-padded waveform, F0's input
    frames: int  # N' / 320
    n_samples: int  # original length
    f0_hz: Optional[np.ndarray] = None  # (N' / 80,), from _fill_f0


@dataclass
class _Prompt:
    rows: torch.Tensor  # (2, N_p) original and denoised prompt (replicated if short)
    wav: np.ndarray  # the unpadded, unreplicated prompt, F0's input
    peak: float
    f0_hz: Optional[np.ndarray] = None  # from _fill_f0


def load_synthesizer(path: str | Path) -> HierSpeechPPSynthesizer:
    """Official ``.pth`` (+ ``config.json`` beside it) or an Echelon checkpoint/experiment directory."""
    return load_official_checkpoint(path) if Path(path).suffix == ".pth" else load_echelon_synthesizer(path)[0]


class VoiceConverter:
    """Zero-shot VC around a :class:`HierSpeechPPSynthesizer` and an SSL feature extractor.

    Args:
        model: the synthesizer (prepared for inference here: eval, weight norm folded, polyphase filters), or its
            exported graphs on onnxruntime (:class:`~models.tts.hierspeechpp.onnx_runtime.OnnxSynthesizer`, CPU).
        ssl: ``processors.ssl.SSLFeatureExtractor`` whose dim equals ``model.config.ssl_channels``.
        denoiser: optional prompt denoiser hook (see module docstring).
        device: where the networks run.
        warm_up: run :meth:`warm_up` here, so that the first real call costs about what any later one does.
    """

    def __init__(self, model: HierSpeechPPSynthesizer, ssl: torch.nn.Module, denoiser: Optional[Denoiser] = None,
                 device: str | torch.device = "cpu", warm_up: bool = True):
        if getattr(ssl, "dim", model.config.ssl_channels) != model.config.ssl_channels:
            raise InferenceError(f"the SSL model gives {ssl.dim}-dim features but the synthesizer expects "
                                 f"ssl_channels={model.config.ssl_channels} (use the SSL model it was trained with)")
        self.device = torch.device(device)
        if isinstance(model, OnnxSynthesizer):
            onnx_backend.on_graphs("onnxruntime", device)  # refuses any device but the CPU
            self.model = model
        else:
            self.model = model.to(self.device).prepare_for_inference()
        self.ssl = ssl.to(self.device).eval()
        self.denoiser = denoiser
        self.mel_fn = HierSpeechLogMel(sample_rate=SAMPLE_RATE, n_mels=model.config.n_mel_channels).to(self.device)
        release_freed_memory()  # the loaded state dict and the weight-norm factors folded away, before any work
        if warm_up:
            self.warm_up()
            release_freed_memory()

    def warm_up(self) -> None:
        """Convert half a second of a synthetic voiced signal and throw the result away.

        A fresh process's first conversion otherwise pays one-off costs: importing YAAPT (amfm_decompy pulls in
        scipy.signal and scipy.stats), starting numba's compiler target and loading the YAAPT and fused-SnakeBeta
        kernels from numba's on-disk cache (compiling them on the very first run), and oneDNN building its
        convolution and matmul kernels. Uses no global random state.
        """
        voiced = synthetic_voice(SAMPLE_RATE // 2, SAMPLE_RATE)
        self.convert([voiced], [voiced], VCOptions(batch_size=1, scale_norm="none"))

    @property
    def backend(self) -> str:
        """What runs the synthesizer: ``"torch"`` or ``"onnxruntime"`` (F0, SSL and the mel stay in Python)."""
        return "onnxruntime" if isinstance(self.model, OnnxSynthesizer) else "torch"

    def set_vocoder_precision(self, precision: str) -> None:
        """Precision of the generator's AMP convolutions (:func:`modules.vocoders.amp.set_vocoder_precision`);
        the onnxruntime backend computes in float32 only."""
        if self.backend == "onnxruntime":
            onnx_backend.check_float32(precision)
        else:
            set_vocoder_precision(self.model, precision)

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
        model = load_official_checkpoint(ckpt_path, config_json, inference_only=True)  # fails before any SSL load
        return cls(model, ssl if ssl is not None else cls.build_ssl(), device=device, **kwargs)

    @classmethod
    def from_echelon(cls, ckpt_dir: str | Path, ssl: Optional[torch.nn.Module] = None, device: str = "cpu",
                     **kwargs) -> "VoiceConverter":
        """Echelon checkpoint dir (``config.json`` + ``generator.safetensors``); SSL from its ``data.ssl``."""
        model, raw = load_echelon_synthesizer(ckpt_dir)
        if ssl is None:
            ssl_cfg = raw.get("data", {}).get("ssl", {})
            ssl = cls.build_ssl(ssl_cfg.get("model", DEFAULT_SSL_MODEL), ssl_cfg.get("layer", DEFAULT_SSL_LAYER),
                                ssl_cfg.get("random_tiny_dim", 0))
        return cls(model, ssl, device=device, **kwargs)

    # ------------------------------------------------------------------ front end
    def _source(self, wav: np.ndarray) -> _Source:
        """The padded source (F0 is filled in by :meth:`_fill_f0`)."""
        if wav.ndim != 1 or wav.size == 0:
            raise AudioError(f"source must be a non-empty mono waveform, got shape {wav.shape}")
        wav = wav.astype(np.float32)
        padded = vc_pad_source(wav)
        ssl_input = official_ssl_input(torch.from_numpy(wav).unsqueeze(0))[0]
        return _Source(ssl_input, padded, padded.shape[-1] // self.model.hop_length, wav.shape[-1])

    def _prompt(self, wav: np.ndarray, opts: VCOptions) -> _Prompt:
        if wav.ndim != 1 or wav.size == 0:
            raise AudioError(f"prompt must be a non-empty mono waveform, got shape {wav.shape}")
        peak = float(np.abs(wav).max())
        prompt = torch.from_numpy(replicate_prompt(wav.astype(np.float32),
                                                   int(opts.min_prompt_seconds * SAMPLE_RATE)))
        if opts.denoise_ratio == 0:
            denoised = prompt
        elif self.denoiser is None:
            raise InferenceError("--denoise_ratio > 0 needs a denoiser hook (none ships with Echelon)")
        else:
            with torch.no_grad():
                padded = vc_pad_source(prompt, DENOISE_PAD_MULTIPLE).to(self.device)
                denoised = self.denoiser(padded).reshape(-1)[: prompt.shape[-1]].float().cpu()
            if denoised.shape[-1] != prompt.shape[-1]:
                raise ValueError(f"denoiser returned {denoised.shape[-1]} samples for a {prompt.shape[-1]}-sample prompt")
        return _Prompt(torch.stack([prompt, denoised]), wav.astype(np.float32), peak)

    @staticmethod
    def _fill_f0(sources: List[_Source], prompts: List[_Prompt], method: str) -> None:
        for item in sources:
            item.f0_hz = np.asarray(extract_f0(item.padded, SAMPLE_RATE, method=method))
        for item in prompts:
            item.f0_hz = np.asarray(extract_f0(item.wav, SAMPLE_RATE, method=method))

    def _ssl(self, sources: List[_Source]) -> tuple[torch.Tensor, torch.Tensor]:
        """SSL features ``(B, C, T)`` and frame lengths ``(B,)`` of the padded sources."""
        dev = self.device
        # Each item padded as officially, then zero-padded to the batch (frames past an item are masked).
        in_lens = torch.tensor([s.ssl_input.shape[-1] for s in sources])
        wav_in = torch.stack([F.pad(s.ssl_input, (0, int(in_lens.max()) - s.ssl_input.shape[-1])) for s in sources])
        with torch.inference_mode():
            feats, frames = self.ssl(wav_in.to(dev), in_lens.to(dev))
        lengths = torch.tensor([s.frames for s in sources], device=dev)
        if not torch.equal(frames.to(dev), lengths):
            raise RuntimeError(f"SSL frames {frames.tolist()} differ from padded-source frames {lengths.tolist()}")
        return feats[..., :int(lengths.max())], lengths

    # ------------------------------------------------------------------ conversion
    @torch.inference_mode()
    def _convert_batch(self, sources: List[_Source], prompts: List[_Prompt], opts: VCOptions,
                       first_index: int) -> List[np.ndarray]:
        dev, batch = self.device, len(sources)
        inter = self.model.config.inter_channels
        # F0 (numba/numpy, releases the GIL) in a worker thread while the SSL encoder runs, when that pays
        beside = side_by_side_pays(dev)
        with ssl_front_end_beside(self.ssl, beside and dev.type == "cpu"):
            _, (feats, lengths) = run_beside(lambda: self._fill_f0(sources, prompts, opts.f0_method),
                                             lambda: self._ssl(sources), parallel=beside)
        t_max = int(lengths.max())
        log_f0 = torch.zeros(batch, 1, 4 * t_max, device=dev)
        noise = torch.zeros(batch, inter, t_max, device=dev)
        for b, (src, prm) in enumerate(zip(sources, prompts)):
            log_f0[b, 0, :4 * src.frames] = retargeted_log_f0(src.f0_hz, prm.f0_hz, 4 * src.frames).to(dev)
            gen = torch.Generator().manual_seed(opts.seed + first_index + b)
            noise[b, :, :src.frames] = torch.randn(inter, src.frames, generator=gen).to(dev)
        # Style rows: [originals..., denoised...] -> g = (1 - r) g + r g_denoised; with r = 0 that is g, and
        # the denoised rows are not run.
        rows = [p.rows[0] for p in prompts] + ([p.rows[1] for p in prompts] if opts.denoise_ratio else [])
        row_lens = torch.tensor([r.shape[-1] for r in rows], device=dev)
        rows_t = torch.stack([F.pad(r, (0, int(row_lens.max()) - r.shape[-1])) for r in rows]).to(dev)
        mel, mel_lens = self.mel_fn(rows_t, row_lens)
        g = self.model.style(mel, mel_lens)
        if opts.denoise_ratio:
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
            src = [self._source(np.asarray(w)) for w in sources[start:stop]]
            prm = [self._prompt(np.asarray(w), opts) for w in prompts[start:stop]]
            outputs.extend(self._convert_batch(src, prm, opts, start))
        # The call's buffers (YAAPT's spectra, the SSL and generator activations) are freed by now, but glibc
        # keeps most of those pages: hand them back, so that whatever runs next (SpeechSR, another model)
        # starts from the loaded size, not from this call's high-water mark (VC + SR48 peak RSS 1414-1492 ->
        # 1389-1464 MB; warm 5 s calls unchanged, 1.32-1.37 -> 1.33-1.36 s). Trimming also between the
        # features and the generator took the peak ~50 MB lower but cost 3-6 % CPU per call: not done.
        if self.device.type == "cpu":
            release_freed_memory()
        return outputs


@dataclass
class VCSettings(VCOptions):
    """Inference settings of the ``hierspeechpp`` VC pipeline: :class:`VCOptions` plus the SSL model."""

    ssl_model: Optional[str] = None  # hub id or local dir; default: the checkpoint's data.ssl, else MMS-300m
    ssl_layer: Optional[int] = None  # default: the checkpoint's data.ssl.layer, else 7
    random_ssl_dim: int = 0  # TESTS ONLY: a randomly initialised tiny wav2vec2 of this width
    chunk_seconds: float = 30.0  # longer sources are converted in pieces cut at pauses (0 = never)
    vocoder_precision: str = "float32"  # the generator's AMP convolutions: float32 | bfloat16 (opt-in, not exact)

    def options(self, seed: int) -> VCOptions:
        """The per-call :class:`VCOptions` of these settings with ``seed``."""
        values = {f.name: getattr(self, f.name) for f in fields(VCOptions)}
        return VCOptions(**{**values, "seed": seed})


@register("pipeline", "hierspeechpp")
class HierSpeechVC(VoiceConversion, PipelineMixin):
    """Task API of HierSpeech++ voice conversion (16 kHz). Component ``synthesizer``: an Echelon
    ``hierspeechpp`` checkpoint dir or an official ``.pth`` (+ its config.json, component ``config``)."""

    task = "vc"
    settings_class = VCSettings
    backends = onnx_backend.BACKENDS  # onnxruntime: the synthesizer's exported graphs (F0 and SSL in Python)
    components = {"synthesizer": True, "config": False}  # config: an official .pth's config.json (default: beside it)
    main_component = "synthesizer"
    sample_rate = SAMPLE_RATE

    def __init__(self, converter: VoiceConverter, settings: VCSettings):
        if settings.denoise_ratio > 0 and converter.denoiser is None:
            raise InferenceError("--denoise_ratio > 0 needs a denoiser hook (none ships with Echelon); "
                                 "use --denoise_ratio 0")
        converter.set_vocoder_precision(settings.vocoder_precision)
        self.converter = converter
        self.settings = settings

    # for pipelines that reuse the synthesizer (TTS): its loader, and its graphs on onnxruntime
    load_synthesizer = staticmethod(load_synthesizer)
    synthesizer_runtime = staticmethod(runtime_for)

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: VCSettings,
                        device: str = "cpu", backend: Optional[str] = None) -> "HierSpeechVC":
        path = Path(components["synthesizer"])
        on_graphs = onnx_backend.on_graphs(backend, device)
        if path.suffix == ".pth":
            model, ssl_cfg = load_official_checkpoint(path, components.get("config"), inference_only=True), {}
        else:
            model, raw = load_echelon_synthesizer(path)
            ssl_cfg = raw.get("data", {}).get("ssl", {})
        ssl = VoiceConverter.build_ssl(
            settings.ssl_model or ssl_cfg.get("model", DEFAULT_SSL_MODEL),
            settings.ssl_layer if settings.ssl_layer is not None else ssl_cfg.get("layer", DEFAULT_SSL_LAYER),
            settings.random_ssl_dim or ssl_cfg.get("random_tiny_dim", 0))
        if on_graphs:
            model = runtime_for(model, path)  # the torch weights are dropped once the graphs are there
        return cls(VoiceConverter(model, ssl, device=device), settings)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"vc"}), audio_prompt=True)

    def convert(self, sources: Sequence[AudioInput], prompts: Sequence[AudioInput],
                seed: Optional[int] = None) -> List[Audio]:
        if len(prompts) == 1 and len(sources) > 1:
            prompts = list(prompts) * len(sources)
        if len(prompts) != len(sources):
            raise ValueError(f"{len(sources)} sources but {len(prompts)} prompts (give one or one per source)")
        seed = self.seed_or_default(seed)
        src = [load_input(s, SAMPLE_RATE).waveform for s in sources]
        prm = [load_input(p, SAMPLE_RATE).waveform for p in prompts]
        limit = int(self.settings.chunk_seconds * SAMPLE_RATE)
        if limit <= 0 or all(w.shape[-1] <= limit for w in src):
            wavs = self.converter.convert(src, prm, self.settings.options(seed))
        else:
            wavs = [self._convert_long(s, p, seed + i, limit) for i, (s, p) in enumerate(zip(src, prm))]
        return [Audio(w, SAMPLE_RATE) for w in wavs]

    def _convert_long(self, source: np.ndarray, prompt: np.ndarray, seed: int, limit: int) -> np.ndarray:
        """Pieces of at most ``limit`` samples (cut at pauses), one conversion each, joined, then levelled."""
        opts = replace(self.settings.options(seed), scale_norm="none", batch_size=1)
        pieces = []
        spans = split_points(source, limit)
        for k, (start, stop) in progress(enumerate(spans), len(spans), "vc pieces"):
            pieces.extend(self.converter.convert([source[start:stop]], [prompt],
                                                 replace(opts, seed=seed + PIECE_SEED_STRIDE * k)))
        return normalize_level(np.concatenate(pieces), self.settings.scale_norm, float(np.abs(prompt).max()))


PIECE_SEED_STRIDE = 1_000_003  # piece k of a long source: its own noise, unlike any other item's seed
