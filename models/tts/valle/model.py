"""VALL-E network: AR decoder over [phonemes ; codebook 1] and NAR decoder over codebooks 2..Q.

Module and parameter names are those of lifeiteng/vall-e's ``VALLE`` (and Amphion's port), so their
checkpoints load with ``strict=True``. Training forward (this file) and decoding (:mod:`.decoding`) are
separate; both take the NAR stage and the mode-1 prompt length as arguments (no hidden RNG).

Shapes: ``text (B, S)`` phoneme ids with ``<pad>`` 0, ``text_lens (B,)``; ``codes (B, T, Q)`` codec codes,
``code_lens (B,)``. EOS = audio padding id = ``num_audio_tokens`` (V); the AR BOS (optional) is V + 1.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.tts.valle.config import ValleModelConfig
from modules.cached_transformer import KVCache, TransformerStack
from modules.commons import sequence_mask
from modules.positional import SinePositionalEmbedding
from utils.registry import register


class TokenEmbedding(nn.Module):
    """``word_embeddings`` (vocab, D): the reference wraps its embeddings so the key has this name."""

    def __init__(self, dim: int, vocab: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    @property
    def weight(self) -> nn.Parameter:
        return self.word_embeddings.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


def ar_attention_mask(text_valid: torch.Tensor, audio_valid: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S+T, S+T)`` "may attend": text rows see text only (bidirectional), audio rows see all text
    and audio up to themselves; padded keys of either block are blocked. ``*_valid (B, S|T)`` bool."""
    s, t = text_valid.shape[1], audio_valid.shape[1]
    device = text_valid.device
    text_rows = F.pad(torch.ones(s, s, dtype=torch.bool, device=device), (0, t), value=False)
    causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    audio_rows = F.pad(causal, (s, 0), value=True)
    structure = torch.cat([text_rows, audio_rows], dim=0)
    keys = torch.cat([text_valid, audio_valid], dim=1)
    return (structure.unsqueeze(0) & keys.unsqueeze(1)).unsqueeze(1)


@register("model", "valle")
class Valle(BuiltFromConfig, nn.Module):
    """AR + NAR codec language model; built by :func:`models.base.building.build_model` / :meth:`from_config` from
    a :class:`ValleModelConfig` (the reference's constructor values, checked there)."""

    config_class = ValleModelConfig

    def __init__(
        self, *, d_model: int, nhead: int, num_layers: int, num_quantizers: int, num_text_tokens: int,
        num_audio_tokens: int, norm_first: bool, share_embedding: bool, prepend_bos: bool, prefix_mode: int,
        nar_scale_factor: float, dropout: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.config = config_of_arguments(ValleModelConfig, locals())
        self.num_quantizers = num_quantizers
        self.num_audio_tokens = num_audio_tokens
        self.prepend_bos = prepend_bos
        self.prefix_mode = prefix_mode
        self.share_embedding = share_embedding
        nar_d = int(d_model * nar_scale_factor)
        ffn = 4 * d_model
        self.ar_text_embedding = TokenEmbedding(d_model, num_text_tokens)
        if num_quantizers > 1:
            self.nar_text_embedding = TokenEmbedding(nar_d, num_text_tokens)
        self.ar_audio_embedding = TokenEmbedding(d_model, num_audio_tokens + 1 + int(prepend_bos))
        self.ar_text_position = SinePositionalEmbedding(d_model, dropout, learnable_alpha=True)
        self.ar_audio_position = SinePositionalEmbedding(d_model, dropout, learnable_alpha=True)
        self.ar_decoder = TransformerStack(d_model, nhead, num_layers, ffn, dropout, norm_first)
        self.ar_predict_layer = nn.Linear(d_model, num_audio_tokens + 1, bias=False)
        if num_quantizers == 1:
            return
        self.nar_audio_embeddings = nn.ModuleList(
            [TokenEmbedding(nar_d, num_audio_tokens + 1)]
            + [TokenEmbedding(nar_d, num_audio_tokens) for _ in range(num_quantizers - 1)]
        )
        # The reference keeps the NAR alphas as frozen parameters (state_dict entries, multiplied in).
        self.nar_text_position = SinePositionalEmbedding(nar_d, 0.0, learnable_alpha=False)
        self.nar_audio_position = SinePositionalEmbedding(nar_d, dropout, learnable_alpha=False)
        self.nar_decoder = TransformerStack(
            nar_d, int(nhead * nar_scale_factor), int(num_layers * nar_scale_factor), 4 * nar_d, dropout,
            norm_first, adaptive_norm=True,
        )  # fmt: skip
        self.nar_predict_layers = nn.ModuleList(
            nn.Linear(nar_d, num_audio_tokens, bias=False) for _ in range(num_quantizers - 1)
        )
        self.nar_stage_embeddings = nn.ModuleList(TokenEmbedding(nar_d, 1) for _ in range(num_quantizers - 1))
        if share_embedding:
            # Output layer j predicts codebook j+1 (0-based) and shares the embedding of codebook j+2, which is
            # the input of the next stage (the reference's tie; the last layer stays free).
            for j in range(num_quantizers - 2):
                self.nar_predict_layers[j].weight = self.nar_audio_embeddings[j + 2].word_embeddings.weight

    @property
    def eos_id(self) -> int:
        return self.num_audio_tokens

    @property
    def bos_id(self) -> int:
        return self.num_audio_tokens + 1

    def tied_pairs(self) -> list[tuple[str, str]]:
        """(output layer key, embedding key) pairs that are one Parameter (``share_embedding``)."""
        if not self.share_embedding:
            return []
        return [
            (f"nar_predict_layers.{j}.weight", f"nar_audio_embeddings.{j + 2}.word_embeddings.weight")
            for j in range(self.num_quantizers - 2)
        ]

    def ar_parameters(self):
        return [p for n, p in self.named_parameters() if n.startswith("ar_")]

    def nar_parameters(self):
        return [p for n, p in self.named_parameters() if n.startswith("nar_")]

    # ------------------------------------------------------------------ AR
    def ar_text(self, text: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` -> positioned text states ``(B, S, D)``."""
        return self.ar_text_position(self.ar_text_embedding(text))

    def ar_audio(self, ids: torch.Tensor, positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, T)`` codebook-1 ids (EOS/BOS allowed) -> ``(B, T, D)``; positions default to 0..T-1."""
        return self.ar_audio_position(self.ar_audio_embedding(ids), positions)

    def ar_inputs_targets(self, first_codebook: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: ``first_codebook (B, T)`` (zeros at padding), ``pad (B, T)`` bool -> inputs, targets.

        ``full = [codes, 0] + EOS * [pad, 1]``; inputs ``full[:, :-1]`` (EOS at padding), targets ``full[:, 1:]``
        (next code; EOS after the last frame and at padding). With BOS: inputs ``[BOS] + full[:, :-1]``,
        targets ``full``.
        """
        full = F.pad(first_codebook, (0, 1), value=0) + self.eos_id * F.pad(pad.long(), (0, 1), value=1)
        if self.prepend_bos:
            return F.pad(full[:, :-1], (1, 0), value=self.bos_id), full
        return full[:, :-1], full[:, 1:]

    def ar_forward(self, text, text_lens, codes, code_lens) -> Dict[str, torch.Tensor]:
        """Teacher-forced AR pass. Returns ``logits (B, T', V+1)``, ``hidden (B, T', D)``, ``targets (B, T')``
        with T' = T (+1 with BOS)."""
        s, t = text.shape[1], codes.shape[1]
        pad = ~sequence_mask(code_lens, t)
        inputs, targets = self.ar_inputs_targets(codes[..., 0], pad)
        audio_valid = F.pad(~pad, (1, 0), value=True) if self.prepend_bos else ~pad
        mask = ar_attention_mask(sequence_mask(text_lens, s), audio_valid)
        states = torch.cat([self.ar_text(text), self.ar_audio(inputs)], dim=1)
        hidden = self.ar_decoder(states, mask)[:, s:]
        return {"logits": self.ar_predict_layer(hidden), "hidden": hidden, "targets": targets}

    def ar_step_logits(self, states: torch.Tensor, mask: Optional[torch.Tensor], cache: Optional[KVCache]) -> torch.Tensor:
        """Decoder + output layer on ``states (B, L, D)`` (new rows only with a cache) -> ``(B, L, V+1)``."""
        return self.ar_predict_layer(self.ar_decoder(states, mask, cache=cache))

    # ------------------------------------------------------------------ NAR
    def nar_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.nar_text_position(self.nar_text_embedding(text))

    def nar_decode(self, text_states, audio_embedding, stage: int, key_valid: Optional[torch.Tensor]) -> torch.Tensor:
        """One NAR pass for ``stage`` in 1..Q-1 -> hidden states of the audio part ``(B, T, D)``.

        ``text_states (B, S, D)``, ``audio_embedding (B, T, D)`` (summed codebook embeddings, no positions),
        ``key_valid (B, S+T)`` bool or None (no padding).
        """
        states = torch.cat([text_states, self.nar_audio_position(audio_embedding)], dim=1)
        mask = None if key_valid is None else key_valid[:, None, None, :]
        cond = self.nar_stage_embeddings[stage - 1].weight
        return self.nar_decoder(states, mask, cond=cond)[:, text_states.shape[1]:]

    def nar_training_embedding(self, first: torch.Tensor, codes: torch.Tensor, stage: int, prefix_len: int) -> torch.Tensor:
        """Summed input embedding ``(B, T, D)``: codebook 1 (``first``, EOS at padding) + codebooks 2..stage;
        in prefix mode 1 the first ``prefix_len`` frames (the acoustic prompt) carry all Q codebooks."""
        emb = self.nar_audio_embeddings
        if self.prefix_mode == 0:
            y = emb[0](first)
            for j in range(1, stage):
                y = y + emb[j](codes[..., j])
            return y
        prompt, rest = emb[0](first[:, :prefix_len]), emb[0](first[:, prefix_len:])
        for j in range(1, self.num_quantizers):
            prompt = prompt + emb[j](codes[:, :prefix_len, j])
            if j < stage:
                rest = rest + emb[j](codes[:, prefix_len:, j])
        return torch.cat([prompt, rest], dim=1)

    def nar_forward(self, text, text_lens, codes, code_lens, stage: int, prefix_len: int = 0) -> Dict[str, torch.Tensor]:
        """Teacher-forced NAR pass predicting codebook ``stage`` (0-based) for all frames after the prompt.

        Returns ``logits (B, T-P, V)``, ``hidden``, ``targets (B, T-P)`` (V at padding = ignored).
        """
        if not 1 <= stage < self.num_quantizers:
            raise ValueError(f"NAR stage {stage} outside 1..{self.num_quantizers - 1}")
        prefix_len = prefix_len if self.prefix_mode == 1 else 0
        s, t = text.shape[1], codes.shape[1]
        valid = sequence_mask(code_lens, t)
        first = codes[..., 0] + self.eos_id * (~valid).long()
        audio = self.nar_training_embedding(first, codes, stage, prefix_len)
        key_valid = torch.cat([sequence_mask(text_lens, s), valid], dim=1)
        hidden = self.nar_decode(self.nar_text(text), audio, stage, key_valid)[:, prefix_len:]
        targets = (codes[..., stage] + self.eos_id * (~valid).long())[:, prefix_len:]
        return {"logits": self.nar_predict_layers[stage - 1](hidden), "hidden": hidden, "targets": targets}

    # ------------------------------------------------------------------ training forward
    def forward(
        self, text: torch.Tensor, text_lens: torch.Tensor, codes: torch.Tensor, code_lens: torch.Tensor,
        train_stage: int = 0, nar_stage: Optional[int] = None, prefix_len: int = 0,
    ) -> Dict[str, torch.Tensor]:  # fmt: skip
        """Summed cross-entropies as the reference computes them.

        ``train_stage`` 0: AR and NAR, ``loss = (ar_loss + nar_loss) / 2``; 1: AR only; 2: NAR only.
        ``ar_loss``: CE summed over all B*T' positions (padding's target is EOS; no ignore index).
        ``nar_loss``: CE summed with padding ignored, times ``sum(T_b) / (sum(T_b) - P*B)`` (P = prompt frames).
        Also returns the logits/hidden/targets of each part and ``frames`` = sum(T_b).
        """
        pad = ~sequence_mask(code_lens, codes.shape[1])
        codes = codes.long().masked_fill(pad.unsqueeze(-1), 0)
        out: Dict[str, torch.Tensor] = {"codes": codes, "frames": code_lens.sum().float()}
        loss = codes.new_zeros((), dtype=torch.float32)
        if train_stage in (0, 1):
            ar = self.ar_forward(text, text_lens, codes, code_lens)
            out.update({f"ar_{k}": v for k, v in ar.items()})
            out["ar_loss"] = F.cross_entropy(ar["logits"].transpose(1, 2), ar["targets"], reduction="sum")
            loss = loss + out["ar_loss"]
        if train_stage in (0, 2) and self.num_quantizers > 1:
            if nar_stage is None:
                raise ValueError("train_stage 0/2 needs nar_stage (draw it from the trainer's seeded RNG)")
            nar = self.nar_forward(text, text_lens, codes, code_lens, nar_stage, prefix_len)
            out.update({f"nar_{k}": v for k, v in nar.items()})
            used = prefix_len if self.prefix_mode == 1 else 0
            total = out["frames"]
            ce = F.cross_entropy(nar["logits"].transpose(1, 2), nar["targets"], ignore_index=self.eos_id, reduction="sum")
            out["nar_loss"] = ce * (total / (total - used * codes.shape[0]))
            loss = loss + out["nar_loss"]
        out["loss"] = loss / 2.0 if train_stage == 0 else loss
        return out


def prefix_len_bounds(code_lens: torch.Tensor, max_prefix: int = 225) -> tuple[int, int]:
    """Mode-1 prompt length range ``[low, high)`` of the reference: low = int(0.25 * min(T_b)), high = 2*low
    (capped at ``max_prefix`` = 3 s at 75 Hz when drawn)."""
    low = int(0.25 * int(code_lens.min()))
    return low, 2 * low
