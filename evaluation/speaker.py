"""Speaker similarity: cosine of speaker embeddings of the generated audio vs the prompt and the reference.

* ``sim_o``  — generated vs the *prompt* the system was conditioned on (SIM-O in zero-shot TTS/VC papers).
* ``sim_ref`` — generated vs the reference recording of the same utterance (same speaker, other audio).

Backends (one model load per metric object; utterance embeddings are L2-normalised, so the score is their
dot product, in [-1, 1]):

=================  ============================================================================================
``resemblyzer``    GE2E d-vector encoder shipped in the resemblyzer wheel (offline).  Its own preprocessing:
                   16 kHz, volume normalisation, long-silence trimming with webrtcvad.  Embeddings are
                   non-negative, so cosines lie in [0, 1].
``wavlm``          ``WavLMForXVector`` through transformers, hub id or local dir (literature:
                   ``microsoft/wavlm-base-plus-sv``; WavLM-large + ECAPA for SIM-O tables).  16 kHz, batched
                   with padding + attention mask when the checkpoint's feature extractor supports masks,
                   one utterance at a time otherwise (padding would change group-normalised features).
=================  ============================================================================================

A silent generated output has no speaker: its SIM is 0 (no similarity).  A silent prompt or reference is a
broken input and raises an error naming the utterance.  Embeddings of a prompt shared by many utterances
are computed once (cached by content).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from evaluation.base import EvalItem, Metric, Row, at_rate, is_silent, length_batches
from evaluation.hf_loading import load_pretrained
from utils.registry import register
from utils.threads import torch_threads

logger = logging.getLogger(__name__)

SPEAKER_SAMPLE_RATE = 16000
DEFAULT_WAVLM_SV = "microsoft/wavlm-base-plus-sv"


class SpeakerEmbedder:
    """Base class: :meth:`embed` maps 16 kHz waveforms ``(T,)`` to L2-normalised embeddings ``(N, D)``."""

    sample_rate = SPEAKER_SAMPLE_RATE

    def embed(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


class ResemblyzerEmbedder(SpeakerEmbedder):
    """resemblyzer ``VoiceEncoder`` (GE2E, 256-dim), weights from the wheel."""

    def __init__(self, device: str = "cpu") -> None:
        from resemblyzer import VoiceEncoder  # lazy: only this backend needs it

        self.encoder = VoiceEncoder(device=device, verbose=False)

    def embed(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        from resemblyzer import preprocess_wav

        out = []
        # a 3-layer, 256-unit LSTM gains nothing from intra-op threads, and on a busy CPU their spin-waits
        # made it ~100x slower (measured: 0.15 s -> 20 s per 6 s clip); the setting is restored afterwards
        with torch_threads(1):
            for wav in wavs:
                prepared = preprocess_wav(np.asarray(wav, dtype=np.float32))
                if prepared.size < self.sample_rate // 4:
                    # the VAD found (almost) no speech: embed the whole clip rather than nothing
                    prepared = np.asarray(wav, dtype=np.float32)
                out.append(self.encoder.embed_utterance(prepared))
        return _l2_normalize(np.stack(out))


class WavLMEmbedder(SpeakerEmbedder):
    """``WavLMForXVector`` x-vectors (hub id or local directory)."""

    def __init__(self, model: str = DEFAULT_WAVLM_SV, batch_size: int = 8, device: str = "cpu") -> None:
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self.feature_extractor = load_pretrained(AutoFeatureExtractor.from_pretrained, model, "WavLM feature extractor")
        self.model = load_pretrained(WavLMForXVector.from_pretrained, model, "WavLM x-vector model")
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        masks = bool(getattr(self.feature_extractor, "return_attention_mask", False))
        self.batch_size = batch_size if masks else 1

    @torch.inference_mode()
    def embed(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """WavLM runs on padded, masked batches; the x-vector head runs per utterance on its valid frames.

        ``WavLMForXVector.forward`` would run its TDNN over the padding too, so an utterance's embedding would
        depend on its batch-mates near the end frames; splitting the head off keeps batching exact.
        """
        out: List[Optional[np.ndarray]] = [None] * len(wavs)
        weighted = bool(self.model.config.use_weighted_layer_sum)
        for batch in length_batches([len(w) for w in wavs], self.batch_size):
            inputs = self.feature_extractor(
                [np.asarray(wavs[i], dtype=np.float32) for i in batch],
                sampling_rate=self.sample_rate,
                return_tensors="pt",
                padding=True,
            )
            kwargs = {}
            if "attention_mask" in inputs:
                kwargs["attention_mask"] = inputs["attention_mask"].to(self.device)
            encoded = self.model.wavlm(inputs["input_values"].to(self.device), output_hidden_states=weighted, **kwargs)
            if weighted:
                weights = torch.softmax(self.model.layer_weights, dim=-1)
                hidden = (torch.stack(encoded.hidden_states, dim=1) * weights.view(-1, 1, 1)).sum(dim=1)
            else:
                hidden = encoded.last_hidden_state  # (B, frames, C)
            frames = self.model._get_feat_extract_output_lengths(torch.tensor([len(wavs[i]) for i in batch]))
            for row, (index, n_frames) in enumerate(zip(batch, frames.tolist())):
                out[index] = self._xvector(hidden[row : row + 1, : int(n_frames)]).float().cpu().numpy()
        return _l2_normalize(np.stack(out))  # type: ignore[arg-type]

    def _xvector(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's own x-vector head on one utterance: ``(1, frames, C)`` -> embedding ``(D,)``."""
        features = self.model.projector(hidden)
        for layer in self.model.tdnn:
            features = layer(features)
        pooled = torch.cat([features[0].mean(dim=0), features[0].std(dim=0)])  # statistics pooling
        return self.model.feature_extractor(pooled)


def _l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def build_embedder(backend: str = "resemblyzer", model: Optional[str] = None, batch_size: int = 8, device: str = "cpu") -> SpeakerEmbedder:
    """Create a speaker embedder by name (``resemblyzer`` or ``wavlm``)."""
    if backend == "resemblyzer":
        if model:
            raise ValueError("the resemblyzer backend uses its embedded model; --sim-model does not apply")
        return ResemblyzerEmbedder(device=device)
    if backend == "wavlm":
        return WavLMEmbedder(model or DEFAULT_WAVLM_SV, batch_size=batch_size, device=device)
    raise ValueError(f"unknown speaker-embedding backend {backend!r}; choose resemblyzer or wavlm")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is all-zero)."""
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom > 0 else 0.0


@register("metric", "sim")
class SpeakerSimilarity(Metric):
    """``sim_o`` (vs prompt) and ``sim_ref`` (vs reference recording), cosine of speaker embeddings."""

    name = "sim"
    columns = {"sim_o": True, "sim_ref": True}

    def __init__(
        self,
        sim_backend: str = "resemblyzer",
        sim_model: Optional[str] = None,
        batch_size: int = 8,
        device: str = "cpu",
        embedder: Optional[SpeakerEmbedder] = None,
    ) -> None:
        self.embedder = embedder if embedder is not None else build_embedder(sim_backend, sim_model, batch_size, device)
        self._cache: Dict[str, np.ndarray] = {}

    def usable(self, item: EvalItem) -> Optional[str]:
        if item.prompt is None and item.reference is None:
            return "neither prompt nor reference audio"
        return None

    def _embed_cached(self, wavs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Embeddings of ``wavs`` in one batch call, reusing those of audio seen before (content hash)."""
        keys = [hashlib.sha1(np.ascontiguousarray(w).tobytes()).hexdigest() for w in wavs]
        todo = {key: wav for key, wav in zip(keys, wavs) if key not in self._cache}
        if todo:
            for key, vector in zip(todo, self.embedder.embed(list(todo.values()))):
                self._cache[key] = vector
        return [self._cache[key] for key in keys]

    def score(self, items: Sequence[EvalItem]) -> List[Row]:
        rate = self.embedder.sample_rate
        gen_index = [i for i, item in enumerate(items) if not item.generated_is_silent]
        gen_vectors = dict(zip(gen_index, self._embed_cached(
            [at_rate(items[i].generated, items[i].generated_sr, rate) for i in gen_index]
        ))) if gen_index else {}
        targets = []  # (item index, column, waveform at 16 kHz), embedded together below
        for index, item in enumerate(items):
            for column, wav, sr in (("sim_o", item.prompt, item.prompt_sr), ("sim_ref", item.reference, item.reference_sr)):
                if wav is None:
                    continue
                if is_silent(wav):
                    what = "prompt" if column == "sim_o" else "reference"
                    raise ValueError(f"{item.utt_id}: the {what} audio is silent; cannot compute speaker similarity")
                targets.append((index, column, at_rate(wav, sr, rate)))
        target_vectors = self._embed_cached([wav for _, _, wav in targets]) if targets else []
        rows: List[Row] = [{"sim_o": float("nan"), "sim_ref": float("nan")} for _ in items]
        for (index, column, _), vector in zip(targets, target_vectors):
            # a silent output has no speaker: similarity 0
            rows[index][column] = cosine(gen_vectors[index], vector) if index in gen_vectors else 0.0
        return rows
