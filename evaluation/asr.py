"""Speech recognisers behind one interface, for WER/CER.

=================  ============================================================================================
backend            model
=================  ============================================================================================
``pocketsphinx``   CMU PocketSphinx 5 with the US-English acoustic model, LM and dictionary shipped in the wheel
                   (offline; ~0.2x real time on one core).  Default: an embedded, *relative* metric.
``whisper``        Whisper through transformers (``WhisperForConditionalGeneration``), hub id or local
                   directory; ``openai/whisper-large-v3`` is what papers report.  Utterances up to 30 s.
``ctc``            wav2vec2 / HuBERT / WavLM CTC models through ``AutoModelForCTC`` + their processor, e.g.
                   ``facebook/hubert-large-ls960-ft``; greedy CTC decoding.
=================  ============================================================================================

Every backend takes mono float32 audio at 16 kHz and returns raw text; normalisation happens in
:mod:`evaluation.intelligibility`.  Models load once (in the constructor) and the transformers backends run in
length-sorted batches.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Type

import numpy as np
import torch

from evaluation.base import length_batches
from evaluation.hf_loading import load_pretrained

logger = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16000
WHISPER_MAX_SECONDS = 30.0
DEFAULT_MODELS = {"whisper": "openai/whisper-large-v3", "ctc": "facebook/hubert-large-ls960-ft"}


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

    @torch.inference_mode()
    def _decode_batch(self, wavs: List[np.ndarray]) -> List[str]:
        for wav in wavs:
            if len(wav) > WHISPER_MAX_SECONDS * self.sample_rate:
                raise ValueError(
                    f"Whisper backend: an utterance is {len(wav) / self.sample_rate:.1f} s long; "
                    f"only utterances up to {WHISPER_MAX_SECONDS:.0f} s are supported"
                )
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


ASR_BACKENDS: Dict[str, Type[ASRBackend]] = {"pocketsphinx": PocketSphinxASR, "whisper": WhisperASR, "ctc": CTCASR}


def build_asr(backend: str = "pocketsphinx", model: Optional[str] = None, batch_size: int = 8, device: str = "cpu") -> ASRBackend:
    """Create an ASR backend by name; ``model`` is a hub id or local directory for the transformers ones."""
    if backend not in ASR_BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r}; choose one of {', '.join(ASR_BACKENDS)}")
    if backend == "pocketsphinx":
        if model:
            raise ValueError("the pocketsphinx backend uses its embedded model; --asr-model does not apply")
        return PocketSphinxASR()
    return ASR_BACKENDS[backend](model=model or DEFAULT_MODELS[backend], batch_size=batch_size, device=device)
