"""Typed configuration of VALL-E (model sizes, decoding) — every size of the network comes from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ValleModelConfig:
    """Constructor values of the reference ``VALLE`` (defaults: the released full-size model)."""

    d_model: int = 1024
    nhead: int = 16
    num_layers: int = 12
    num_quantizers: int = 8
    num_text_tokens: int = 512
    num_audio_tokens: int = 1024  # codebook size; EOS = audio padding id = this value
    norm_first: bool = True
    share_embedding: bool = True  # tie nar_predict_layers[j] to nar_audio_embeddings[j+2]
    prepend_bos: bool = False  # AR audio BOS (id num_audio_tokens + 1); changes the AR embedding rows
    prefix_mode: int = 1  # NAR acoustic prompt during training: 0 none, 1 prefix of the same utterance
    nar_scale_factor: float = 1.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.prefix_mode not in (0, 1):
            raise ValueError(f"model.prefix_mode={self.prefix_mode}: only 0 and 1 are implemented (see README)")
        for name in ("d_model", "nhead", "num_layers", "num_quantizers", "num_text_tokens", "num_audio_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ValleDecodingConfig:
    """AR sampling and stopping (reference CLI defaults: no top-k, temperature 1, 16 frames per text token)."""

    top_k: int = -100  # <= 0: no top-k filtering; 1: greedy (argmax)
    top_p: float = 1.0
    temperature: float = 1.0
    max_frames_per_token: int = 16  # length cap: stop once generated > this * text length (prompt's included)
    stop_on_argmax_eos: bool = True  # reference rule: stop when argmax is EOS even if the sample is not
    use_kv_cache: bool = True
