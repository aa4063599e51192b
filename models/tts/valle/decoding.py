"""VALL-E decoding: AR codebook 1 (KV-cached or fully recomputed, batched), NAR codebooks 2..Q, continuation.

Batches: texts are right-padded (``text_lens``) and acoustic prompts right-padded (``prompt_lens``). Generated
frames of every item are appended after the longest prompt; each item's audio positions continue from its own
prompt length and its prompt padding is masked out, so every item computes what it would compute alone.

Stopping (reference rule): an item stops at the step whose argmax is EOS (``stop_on_argmax_eos``), or whose
sampled token is EOS, or once it has generated more than ``max_frames_per_token * text_len`` frames; that
step's token is dropped. Stopping before the first frame is an error (the reference raises too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from models.tts.valle.config import ValleDecodingConfig
from models.tts.valle.model import Valle, ar_attention_mask
from modules.cached_transformer import KVCache
from modules.commons import sequence_mask


class ValleDecodingError(RuntimeError):
    """The AR stopped before generating any frame (names the batch item)."""


@dataclass
class ArResult:
    codes: List[torch.Tensor]  # per item (G_b,) codebook-1 ids
    stop_reasons: List[str]  # "eos" or "length"
    steps: int  # decoder passes of the whole batch (= max G_b + 1)
    step_logits: List[torch.Tensor] = field(default_factory=list)  # per item (G_b + 1, V+1) if kept


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float, temperature: float) -> torch.Tensor:
    """Temperature, then top-k (keep logits >= the k-th largest), then nucleus top-p (keep the smallest set
    whose probability reaches ``top_p``, always the best token). ``logits (B, V)`` -> filtered copy."""
    logits = logits / temperature if temperature != 1.0 else logits.clone()
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative > top_p
        drop[..., 1:] = drop[..., :-1].clone()  # keep the token that crosses the threshold
        drop[..., 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def sample_tokens(logits: torch.Tensor, cfg: ValleDecodingConfig, generator: Generators) -> torch.Tensor:
    """``(B, V)`` -> ``(B,)`` sampled ids; ``top_k == 1`` is argmax (greedy, no RNG use). ``generator``: one
    for the batch, or one per row (row ``b`` then draws from its own only, whatever the other rows are)."""
    if cfg.top_k == 1:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits.float(), cfg.top_k, cfg.top_p, cfg.temperature), dim=-1)
    if generator is None or isinstance(generator, torch.Generator):
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(probs, generator)])


class ArStepper:
    """Next-token logits of every item: with a KV cache (new rows only) or recomputing the whole sequence."""

    def __init__(self, model: Valle, text, text_lens, prompt, prompt_lens, capacity: int, use_cache: bool):
        self.model, self.use_cache = model, use_cache
        self.text_states = model.ar_text(text)
        self.text_valid = sequence_mask(text_lens, text.shape[1])
        self.prompt, self.prompt_lens = prompt, prompt_lens
        self.generated: List[torch.Tensor] = []
        self.cache = KVCache(len(model.ar_decoder.layers), capacity) if use_cache else None

    def first(self) -> torch.Tensor:
        audio_valid = sequence_mask(self.prompt_lens, self.prompt.shape[1])
        self.key_valid = torch.cat([self.text_valid, audio_valid], dim=1)
        return self._full(self.prompt, audio_valid, self.model.ar_audio(self.prompt))

    def _full(self, ids, audio_valid, audio_states) -> torch.Tensor:
        s = self.text_states.shape[1]
        mask = ar_attention_mask(self.text_valid, audio_valid)
        logits = self.model.ar_step_logits(torch.cat([self.text_states, audio_states], 1), mask, self.cache)
        last = s + self.prompt_lens - 1 if not self.generated else torch.full_like(self.prompt_lens, logits.shape[1] - 1)
        return logits[torch.arange(logits.shape[0], device=logits.device), last]

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append ``tokens (B,)`` at each item's next audio position; logits ``(B, V+1)`` after them."""
        step = len(self.generated)
        self.generated.append(tokens)
        if self.use_cache:
            positions = (self.prompt_lens + step).unsqueeze(1)
            states = self.model.ar_audio(tokens.unsqueeze(1), positions)
            self.key_valid = F.pad(self.key_valid, (0, 1), value=True)
            return self.model.ar_step_logits(states, self.key_valid[:, None, None, :], self.cache)[:, -1]
        new = torch.stack(self.generated, dim=1)
        ids = torch.cat([self.prompt, new], dim=1)
        p = self.prompt.shape[1]
        gen_pos = self.prompt_lens.unsqueeze(1) + torch.arange(new.shape[1], device=new.device)
        positions = torch.cat([torch.arange(p, device=new.device).expand(new.shape[0], p), gen_pos], dim=1)
        audio_valid = F.pad(sequence_mask(self.prompt_lens, p), (0, new.shape[1]), value=True)
        return self._full(ids, audio_valid, self.model.ar_audio(ids, positions))


@torch.no_grad()
def generate_first_codebook(
    model: Valle, text: torch.Tensor, text_lens: torch.Tensor, prompt: torch.Tensor, prompt_lens: torch.Tensor,
    cfg: ValleDecodingConfig, generator: Generators = None, keep_logits: bool = False,
) -> ArResult:  # fmt: skip
    """AR decoding of codebook 1. ``text (B, S)``, ``prompt (B, P)`` codebook-1 ids of the acoustic prompts."""
    batch = text.shape[0]
    prompt_lens = prompt_lens.clone()
    if model.prepend_bos:
        prompt = F.pad(prompt, (1, 0), value=model.bos_id)
        prompt_lens = prompt_lens + 1
    caps = cfg.max_frames_per_token * text_lens
    capacity = text.shape[1] + prompt.shape[1] + int(caps.max()) + 2
    stepper = ArStepper(model, text, text_lens, prompt, prompt_lens, capacity, cfg.use_kv_cache)
    logits = stepper.first()
    alive = torch.ones(batch, dtype=torch.bool, device=text.device)
    lengths = torch.zeros(batch, dtype=torch.long, device=text.device)
    reasons = [""] * batch
    tokens_per_step, logits_per_step = [], []
    step = 0
    while True:
        tokens = sample_tokens(logits, cfg, generator)
        eos = tokens == model.eos_id
        if cfg.stop_on_argmax_eos:
            eos = eos | (logits.argmax(dim=-1) == model.eos_id)
        too_long = step > caps
        if keep_logits:
            logits_per_step.append(logits.float())
        for b in torch.nonzero(alive & (eos | too_long)).flatten().tolist():
            if step == 0:
                raise ValueError(f"batch item {b}: the AR stopped before generating any frame (EOS at the first step)")
            reasons[b] = "eos" if bool(eos[b]) else "length"
        alive = alive & ~(eos | too_long)
        lengths = lengths + alive.long()
        if not bool(alive.any()):
            break
        tokens_per_step.append(tokens)
        logits = stepper.next(tokens.masked_fill(~alive, 0))
        step += 1
    generated = torch.stack(tokens_per_step, dim=1)
    codes = [generated[b, : int(lengths[b])] for b in range(batch)]
    kept = [torch.stack([row[b] for row in logits_per_step[: int(lengths[b]) + 1]]) for b in range(batch)] if keep_logits else []
    return ArResult(codes, reasons, step + 1, kept)


@torch.no_grad()
def fill_codebooks(
    model: Valle, text: torch.Tensor, text_lens: torch.Tensor, first: torch.Tensor, lengths: torch.Tensor,
    prompt: torch.Tensor, prompt_lens: torch.Tensor, keep_logits: bool = False,
) -> tuple[torch.Tensor, List[torch.Tensor]]:  # fmt: skip
    """NAR: greedy codebooks 2..Q for the non-prompt frames.

    ``first (B, T)`` codebook 1 of prompt + new frames, ``lengths (B,)`` their counts, ``prompt (B, P, Q)``
    with ``prompt_lens``. Returns codes ``(B, T, Q)`` (prompt frames = the prompt's codes) and, if asked, the
    logits ``(B, T, V)`` of each stage. Mode 0 adds the prompt's codebooks stage by stage (as in its training),
    mode 1 adds them all first.
    """
    emb = model.nar_audio_embeddings
    batch, t = first.shape
    quantizers = model.num_quantizers
    is_prompt = sequence_mask(prompt_lens, t).unsqueeze(-1)
    valid = sequence_mask(lengths, t)
    prompt_full = F.pad(prompt, (0, 0, 0, t - prompt.shape[1]))
    first = first.masked_fill(~valid, model.eos_id)
    audio = emb[0](first)
    if model.prefix_mode == 1:
        for j in range(1, quantizers):
            audio = audio + torch.where(is_prompt, emb[j](prompt_full[..., j]), 0.0)
    key_valid = torch.cat([sequence_mask(text_lens, text.shape[1]), valid], dim=1)
    key_valid = None if bool(key_valid.all()) else key_valid
    text_states = model.nar_text(text)
    codes = torch.zeros(batch, t, quantizers, dtype=torch.long, device=first.device)
    codes[..., 0] = first.masked_fill(~valid, 0)
    all_logits = []
    for stage in range(1, quantizers):
        hidden = model.nar_decode(text_states, audio, stage, key_valid)
        logits = model.nar_predict_layers[stage - 1](hidden)
        if keep_logits:
            all_logits.append(logits)
        codes[..., stage] = torch.where(is_prompt[..., 0], prompt_full[..., stage], logits.argmax(dim=-1))
        codes[..., stage].masked_fill_(~valid, 0)
        if stage < quantizers - 1:
            added = emb[stage](codes[..., stage])
            audio = audio + (added if model.prefix_mode == 0 else torch.where(is_prompt, 0.0, added))
    return codes, all_logits


@torch.no_grad()
def synthesize_codes(
    model: Valle, text: torch.Tensor, text_lens: torch.Tensor, prompt: torch.Tensor, prompt_lens: torch.Tensor,
    cfg: ValleDecodingConfig, generator: Generators = None,
) -> tuple[List[torch.Tensor], ArResult]:  # fmt: skip
    """Zero-shot TTS in codes: ``text`` = phonemes of prompt text + target text, ``prompt (B, P, Q)`` the prompt
    audio's codes. Returns the new frames per item ``(G_b, Q)`` and the AR result (stop reasons, steps)."""
    ar = generate_first_codebook(model, text, text_lens, prompt[..., 0], prompt_lens, cfg, generator)
    if model.num_quantizers == 1:
        return [c.unsqueeze(-1) for c in ar.codes], ar
    gen_lens = torch.tensor([len(c) for c in ar.codes], device=text.device)
    lengths = prompt_lens + gen_lens
    first = torch.zeros(text.shape[0], int(lengths.max()), dtype=torch.long, device=text.device)
    for b, new in enumerate(ar.codes):
        p = int(prompt_lens[b])
        first[b, :p] = prompt[b, :p, 0]
        first[b, p : p + len(new)] = new
    codes, _ = fill_codebooks(model, text, text_lens, first, lengths, prompt, prompt_lens)
    return [codes[b, int(prompt_lens[b]) : int(lengths[b])] for b in range(text.shape[0])], ar


def continuation_prompt_len(frames: int, max_prompt_frames: int = 225) -> int:
    """The reference's continuation split: half of the given frames, at most 3 s (225 frames at 75 Hz)."""
    return min(int(frames * 0.5), max_prompt_frames)


@torch.no_grad()
def continue_codes(model: Valle, text, text_lens, codes: torch.Tensor, max_prompt_frames: int = 225):
    """The reference's ``continual``: ``codes (1, T, Q)``; the first half (<= 3 s) is the acoustic prompt,
    codebook 1 of the rest is kept and the NAR predicts its codebooks 2..Q -> ``(1, T - P, Q)`` and logits."""
    t = codes.shape[1]
    p = continuation_prompt_len(t, max_prompt_frames)
    lens = torch.full((codes.shape[0],), t, dtype=torch.long, device=codes.device)
    plen = torch.full_like(lens, p)
    full, logits = fill_codebooks(model, text, text_lens, codes[..., 0], lens, codes[:, :p], plen, keep_logits=True)
    return full[:, p:], [lg[:, p:] for lg in logits]
