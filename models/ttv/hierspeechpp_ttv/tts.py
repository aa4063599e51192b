"""Zero-shot TTS with HierSpeech++: text + prompt wav -> 16, 24 or 48 kHz speech.

Pipeline (official ``inference.py`` ``tts()``, plus the fixes users asked for):

1. text -> sentences (the shared loop of :class:`models.base.sentence_tts.SentenceTTS`; long text no longer
   goes through the TTV in one pass) ->
   ``english_cleaners2`` phonemes -> ids with blanks (:class:`processors.text.frontend.TextFrontend`).
2. prompt (any rate, resampled to 16 kHz) -> replicated to ``min_prompt_seconds`` when short ("prompt
   replication") -> rows [prompt, denoised prompt] -> log-mel -> one style per model, mixed by
   ``denoise_ratio`` (a denoiser hook is needed for ratios > 0; none ships).
3. per sentence: TTV (``noise_scale_ttv``, ``noise_scale_w``, ``length_scale``) -> SSL-like features and
   ln(F0+1); F0 below ln(55) set to 0 (unvoiced, as released) -> synthesizer (``noise_scale_vc``) -> 16 kHz.
   Sentence ``i`` of text ``k`` draws its noise from ``seed + 1000 k + i``: reproducible and independent of
   how many texts are given in one call.
4. sentences joined with ``pause_seconds`` of silence -> SpeechSR to 24/48 kHz (optional) -> level
   normalisation (``max``: peak 0.999 as released; ``prompt``: the prompt's peak; ``none``).

Bad text: empty or punctuation-only text raises :class:`processors.text.frontend.TextError` ("the English
front end cannot read this text"); pieces of a longer text without speakable content are skipped; symbols outside the table are dropped with a warning
(``on_unknown="warn"``) or raise (``"error"``); 10,000 characters are split into ~300-character sentences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from models.base import onnx_backend
from models.base.sentence_tts import SentenceSettings, SentenceTTS, Voice
from models.base.tasks import Audio, Capabilities, load_input
from models.base.text_split import FRONT_END_LOCK
from models.base.waveforms import normalize_level, replicate_prompt
from models.ttv.hierspeechpp_ttv.model import TextToVec
from modules.vocoders.amp import set_vocoder_precision, vocoder_precision_of
from processors.audio import AudioError
from processors.spectrogram import HierSpeechLogMel
from processors.text.frontend import TextFrontend
from utils.registry import get

Denoiser = Callable[[torch.Tensor], torch.Tensor]  # (N,) -> (N,) at 16 kHz

SAMPLE_RATE = 16000
UNVOICED_LOG_F0 = math.log(55.0)  # TTV pitch below ln(55) -> unvoiced (official clipping)


@dataclass
class TTSOptions(SentenceSettings):
    """Settings of the zero-shot TTS (the ``infer`` section of pipeline ``hierspeechpp_tts``)."""

    noise_scale_ttv: float = 0.333  # TTV prior temperature
    noise_scale_w: float = 1.0  # duration-predictor temperature
    length_scale: float = 1.0  # > 1 slower speech
    noise_scale_vc: float = 0.333  # synthesizer prior temperature
    denoise_ratio: float = 0.0  # style mix with the denoised prompt (needs a denoiser hook when > 0)
    output_rate: int = 16000  # 16000, 24000 or 48000
    vocoder_precision: str = "float32"  # synthesizer + SpeechSR AMP convolutions: float32 | bfloat16 (opt-in)
    scale_norm: str = "max"  # max | prompt | none
    min_prompt_seconds: float = 3.0
    seed: int = 1111


class ZeroShotTTS:
    """Text-to-speech from a TTV, a hierarchical synthesizer and (optionally) SpeechSR.

    Args:
        ttv, synthesizer: the two models (their SSL sizes must agree); prepared for inference here. The
            synthesizer is a ``HierSpeechPPSynthesizer`` (``get("model", "hierspeechpp")``). Or both on
            onnxruntime (CPU): :class:`~models.ttv.hierspeechpp_ttv.onnx_runtime.OnnxTextToVec` and the
            synthesizer pipeline's ``synthesizer_runtime``; bundled SpeechSR then runs on onnxruntime too.
        speechsr: a SpeechSR task pipeline (``upsample`` to its ``sample_rate``) for 24/48 kHz output; default:
            the bundled released weights of the asked rate, loaded lazily through the registry.
        frontend: text front end (default: blanks on, unknown symbols dropped with a warning).
        denoiser: optional prompt denoiser hook ``(N,) tensor -> (N,) tensor`` at 16 kHz.
    """

    def __init__(self, ttv: TextToVec, synthesizer: torch.nn.Module,
                 speechsr: Optional[Any] = None, frontend: Optional[TextFrontend] = None,
                 denoiser: Optional[Denoiser] = None, device: str | torch.device = "cpu"):
        if ttv.config.ssl_channels != synthesizer.config.ssl_channels:
            raise ValueError(f"TTV emits {ttv.config.ssl_channels}-dim features but the synthesizer expects "
                             f"{synthesizer.config.ssl_channels}")
        self.device = torch.device(device)
        backends = {getattr(model, "backend", "torch") for model in (ttv, synthesizer)}
        if len(backends) != 1:
            raise ValueError("the TTV and the synthesizer run on different backends; give both as torch models "
                             "or both as onnxruntime graphs")
        self.backend = backends.pop()
        if onnx_backend.on_graphs(self.backend, self.device):
            self.ttv, self.synthesizer = ttv, synthesizer
        else:
            self.ttv = ttv.to(self.device).prepare_for_inference()
            self.synthesizer = synthesizer.to(self.device).prepare_for_inference()
        self.upsamplers: Dict[int, Any] = {} if speechsr is None else {int(speechsr.sample_rate): speechsr}
        self.bundled_sr = speechsr is None
        self.frontend = frontend or TextFrontend(add_blank=True, on_unknown="warn")
        self.denoiser = denoiser
        self.mel_fn = HierSpeechLogMel().to(self.device)

    @property
    def vocoder_precision(self) -> str:
        """The precision the synthesizer's AMP convolutions run in (SpeechSR's is switched with it)."""
        return "float32" if self.backend == "onnxruntime" else vocoder_precision_of(self.synthesizer)

    def set_vocoder_precision(self, precision: str) -> None:
        """Precision of the synthesizer's and SpeechSR's AMP-block convolutions (``"float32"`` or the opt-in
        ``"bfloat16"``: :func:`modules.vocoders.amp.set_vocoder_precision`); SpeechSR loaded later follows."""
        if precision == self.vocoder_precision:
            return
        for upsampler in self.upsamplers.values():  # every refusal before anything is switched
            upsampler.inference.check_vocoder_precision(precision)
        if self.backend == "onnxruntime":
            onnx_backend.check_float32(precision)
        set_vocoder_precision(self.synthesizer, precision)  # refuses before switching anything, too
        for upsampler in self.upsamplers.values():
            upsampler.inference.set_vocoder_precision(precision)

    # ------------------------------------------------------------------ prompt
    def _styles(self, prompt: np.ndarray, opts: TTSOptions) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Prompt (N,) at 16 kHz -> (TTV style (1,256,1), synthesizer style (1,256,1), prompt peak)."""
        prompt = np.asarray(prompt, dtype=np.float32)
        if prompt.ndim != 1 or prompt.size == 0 or not np.isfinite(prompt).all():
            raise AudioError(f"prompt must be a non-empty finite mono waveform, got shape {prompt.shape}")
        peak = float(np.abs(prompt).max())
        rows = torch.from_numpy(replicate_prompt(prompt, int(opts.min_prompt_seconds * SAMPLE_RATE)))
        if opts.denoise_ratio == 0:
            denoised = rows
        elif self.denoiser is None:
            raise ValueError("denoise_ratio > 0 needs a denoiser hook (none ships with Echelon)")
        else:
            with torch.no_grad():
                denoised = self.denoiser(rows.to(self.device)).reshape(-1)[: rows.shape[-1]].float().cpu()
        with torch.no_grad():
            mel = self.mel_fn(torch.stack([rows, denoised]).to(self.device))
            lengths = torch.full((2,), mel.size(2), dtype=torch.long, device=self.device)
            r = opts.denoise_ratio
            g_ttv = self.ttv.style(mel, lengths)
            g_syn = self.synthesizer.style(mel, lengths)
        return (1 - r) * g_ttv[:1] + r * g_ttv[1:], (1 - r) * g_syn[:1] + r * g_syn[1:], peak

    # ------------------------------------------------------------------ synthesis
    @torch.no_grad()
    def _sentence(self, ids_blank: List[int], g_ttv: torch.Tensor, g_syn: torch.Tensor, opts: TTSOptions,
                  gen: torch.Generator) -> np.ndarray:
        text = torch.tensor([ids_blank], dtype=torch.long, device=self.device)
        length = torch.tensor([len(ids_blank)], dtype=torch.long, device=self.device)
        w2v, pitch, frames = self.ttv.generate(text, length, g_ttv, opts.noise_scale_ttv, opts.noise_scale_w,
                                               opts.length_scale, generator=gen)
        pitch = torch.where(pitch < UNVOICED_LOG_F0, torch.zeros_like(pitch), pitch)
        noise_vc = torch.randn(1, self.synthesizer.config.inter_channels, w2v.size(2), generator=gen).to(self.device)
        wav = self.synthesizer.convert(w2v, frames, pitch, g_syn, opts.noise_scale_vc, noise=noise_vc)["wav"]
        return wav[0, 0].float().cpu().numpy()

    def synthesize(self, text: str, prompt: np.ndarray, options: Optional[TTSOptions] = None,
                   text_index: int = 0) -> np.ndarray:
        """One text in the prompt's voice (16 kHz array) -> float32 waveform at ``options.output_rate``; the
        same as text ``text_index`` of a :class:`ZeroShotSentences` call (the shared sentence loop)."""
        speaker = ZeroShotSentences(self, options or TTSOptions())
        voice = speaker.voice(Voice(prompt=Audio(np.asarray(prompt, dtype=np.float32), SAMPLE_RATE)))
        return speaker.synthesize_text(text, voice, speaker.item_seed(speaker.settings.seed, text_index)).waveform

    def upsampler(self, rate: int) -> Any:
        """The SpeechSR pipeline for ``rate``: the one given, or the bundled release (through the registry)."""
        if rate not in self.upsamplers:
            if not self.bundled_sr:
                have = ", ".join(str(r) for r in self.upsamplers)
                raise ValueError(f"output_rate {rate}: the SpeechSR component upsamples to {have} Hz only")
            sr_cls = get("pipeline", "speechsr")
            settings = sr_cls.settings_class(target_rate=rate, vocoder_precision=self.vocoder_precision)
            self.upsamplers[rate] = sr_cls.from_components({"model": None}, settings, str(self.device),
                                                           backend=self.backend)
        return self.upsamplers[rate]

    def synthesize_many(self, texts: Sequence[str], prompt: np.ndarray,
                        options: Optional[TTSOptions] = None) -> List[np.ndarray]:
        """Several texts in one voice; text ``k`` is reproducible on its own (its seed offset is ``1000 k``)."""
        speaker = ZeroShotSentences(self, options or TTSOptions())
        voice = Audio(np.asarray(prompt, dtype=np.float32), SAMPLE_RATE)
        return [out.waveform for out in speaker.synthesize(texts, prompts=[voice])]


class ZeroShotSentences(SentenceTTS):
    """The task API over a :class:`ZeroShotTTS` engine: the base's sentence loop with the prompt's styles as the
    voice, 16 kHz pieces, SpeechSR and level normalisation as :meth:`finish`. Sentence ``i`` of text ``k`` draws
    from ``seed + 1000 k + i``."""

    task = "tts"
    split_every_sentence = True  # the TTV was trained on short sentences

    def __init__(self, engine: ZeroShotTTS, settings: TTSOptions):
        if settings.output_rate not in (16000, 24000, 48000):
            raise ValueError(f"output_rate must be 16000, 24000 or 48000, got {settings.output_rate}")
        engine.set_vocoder_precision(settings.vocoder_precision)
        self.engine = engine
        self.settings = settings
        self.sample_rate = settings.output_rate

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"tts"}), audio_prompt=True)

    @property
    def piece_rate(self) -> int:
        return SAMPLE_RATE

    def output_rate(self) -> int:
        return int(self.settings.output_rate)

    def voice(self, given: Voice) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """(TTV style, synthesizer style, prompt peak) of the prompt."""
        return self.engine._styles(load_input(given.prompt, SAMPLE_RATE).waveform, self.settings)

    def synthesize_piece(self, text: str, voice: Tuple[torch.Tensor, torch.Tensor, float],
                         generator: torch.Generator) -> np.ndarray:  # fmt: skip
        with FRONT_END_LOCK:  # phonemizer's backend is shared by the process's models and not thread-safe
            ids = self.engine.frontend(text)["ids_blank"]
        return self.engine._sentence(ids, voice[0], voice[1], self.settings, generator)

    def finish(self, waveform: np.ndarray, voice: Tuple[torch.Tensor, torch.Tensor, float]) -> np.ndarray:
        if self.settings.output_rate != SAMPLE_RATE:
            waveform = self.engine.upsampler(self.settings.output_rate).upsample([Audio(waveform, SAMPLE_RATE)])[0].waveform
        return normalize_level(waveform, self.settings.scale_norm, voice[2])
