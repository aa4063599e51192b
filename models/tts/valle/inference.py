"""VALL-E inference: zero-shot TTS (prompt audio + its transcript + target text) and continuation.

Python API (task contract :class:`models.base.tasks.TextToSpeech`)::

    tts = load_pipeline("exp/valle")                               # Echelon checkpoint / experiment dir
    tts = load_pipeline("valle.json5", ["infer.top_k=1"])          # a pipeline spec (below), settings overridden
    tts = ValleTTS.from_path("ckpt_folder_or_file")                # lifeiteng/Amphion file or accelerate folder
    out = tts.synthesize(["Target words."], prompts=["prompt.wav"], prompt_texts=["Words of the prompt."], seed=1)
    out = tts.continue_speech(["utterance.wav"], ["Transcript of the whole utterance."], prompt_seconds=3.0)

A pipeline spec declares the AR + NAR checkpoint, optionally a separately trained NAR (the references' two-run
recipe) and the codec once::

    {pipeline: "valle", components: {model: "exp/valle_ar", nar: "exp/valle_nar"},
     infer: {codec: "facebook/encodec_24khz", top_k: -100, temperature: 1.0, seed: 7}}

The text is phonemised as one string ``prompt_text + " " + text`` (the reference's way); prompts at any sample
rate are resampled to the codec's 24 kHz. A text longer than ``max_sentence_chars`` is spoken sentence by
sentence, each one phonemised after the prompt transcript, joined with ``pause_seconds`` of silence (the shared
loop of :class:`models.base.sentence_tts.SentenceTTS`). Outputs hold the new audio only (``synthesize``) or the prompt
followed by its continuation (``continue_speech``). Settings (:class:`ValleSettings`) start from the
checkpoint's ``decoding`` section (reference defaults: full-softmax sampling, temperature 1, EOS rule, 16
frames per text token).

CLI (``echelon-infer --pipeline exp/valle|valle.json5|reference_folder --model_type valle ...``, through the
shared batch runner): ``--text T --prompt P.wav --prompt_text "..."`` (one job), ``--continuation``
(``--prompt`` is the utterance, ``--text`` its transcript) or ``--jobs jobs.jsonl`` with objects ``{"id",
"text", "prompt", "prompt_text"}`` or ``{"id", "text", "prompt", "continuation": true}``. Settings are options
too (``--top_k 1``, ``--use_kv_cache false``, ``--set infer.temperature=0.8``). Failing jobs are skipped and
listed in the run's bad-item list (``models/base/inference.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from models.base import checkpoint as ckpt
from models.base.inference import Item
from models.base.pipeline import PipelineMixin, load_pipeline
from models.base.task_inference import TextToSpeechInference
from models.base.sentence_tts import SentenceSettings, SentenceTTS, Voice
from models.base.tasks import Audio, AudioInput, Capabilities, load_input
from models.tts.valle.config import ValleDataConfig, ValleDecodingConfig, ValleExperimentConfig, ValleModelConfig
from models.tts.valle.decoding import synthesize_codes
from models.tts.valle.model import Valle
from models.tts.valle.reference_checkpoint import (
    config_from_amphion_args, find_amphion_args, find_beside, load_reference_checkpoint,
)  # fmt: skip
from models.tts.valle.text import SymbolTable, phoneme_tokens, read_symbol_file
from processors.codec import CodecError, EncodecCodec
from utils.config import validate
from utils.registry import register

SYMBOL_FILES = ("symbols.dict", "unique_text_tokens.k2symbols")


@dataclass
class ValleSettings(SentenceSettings, ValleDecodingConfig):
    """Inference settings of the ``valle`` pipeline (a spec's ``infer`` section, ``--set infer.NAME=VALUE``).

    The decoding fields start from the checkpoint's ``decoding`` section (the reference's defaults for a
    reference checkpoint); ``codec`` null = the checkpoint's ``data.codec``.
    """

    prompt_seconds: float = 3.0  # continuation: seconds of the utterance used as the prompt
    codec: Optional[str] = None  # codec hub id or local dir (default: the checkpoint's data.codec)
    seed: int = 1234  # item i of a call draws from seed + 1000 i (models/base/sentence_tts.py)

    def decoding(self) -> ValleDecodingConfig:
        return ValleDecodingConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ValleDecodingConfig)})


def load_valle(path: str | Path) -> Tuple[Valle, ValleExperimentConfig]:
    """The model and config of an Echelon checkpoint, or of a reference file/folder with its ``args.json`` and
    symbol file (``symbols.dict`` / ``unique_text_tokens.k2symbols``) beside it or in a parent folder."""
    try:
        cdir = ckpt.resolve_checkpoint_dir(path)
    except ckpt.CheckpointError:
        args_json, symbols = find_amphion_args(path), find_beside(path, SYMBOL_FILES)
        if args_json is None or symbols is None:
            raise ckpt.CheckpointError(
                f"{path}: neither an Echelon checkpoint nor a reference checkpoint with args.json and a "
                f"symbol file (symbols.dict / unique_text_tokens.k2symbols) beside it"
            ) from None
        cfg = ValleExperimentConfig(model=config_from_amphion_args(args_json),
                                    data=ValleDataConfig(symbols=read_symbol_file(symbols)))  # fmt: skip
        model = Valle.from_config(cfg.model)
        load_reference_checkpoint(model, path)
        return model, cfg
    ckpt.expect_model_type(cdir, "valle")
    cfg = read_experiment_config(cdir)
    model = Valle.from_config(cfg.model)
    ckpt.load_state_dict_strict(model, ckpt.load_model_weights(cdir, "valle"), str(cdir))
    return model, cfg


def take_nar(model: Valle, cfg: ValleExperimentConfig, nar_path: str | Path) -> None:
    """Replace ``model``'s NAR half by the one of checkpoint ``nar_path`` (the references' two-run recipe: an
    AR run, then a NAR run); sizes and symbol tables must agree."""
    nar, nar_cfg = load_valle(nar_path)
    for what, mine, theirs in (("model", cfg.model, nar_cfg.model), ("symbol table", cfg.data.symbols, nar_cfg.data.symbols)):
        if mine != theirs:
            raise ckpt.CheckpointError(f"components.nar {nar_path}: its {what} differs from components.model's")
    state = {k: v for k, v in nar.state_dict().items() if k.startswith("nar_")}
    model.load_state_dict({**model.state_dict(), **state}, strict=True)


@register("pipeline", "valle")
class ValleTTS(SentenceTTS, PipelineMixin):
    """Zero-shot TTS and continuation. Pipeline components: ``model`` (AR + NAR: an Echelon checkpoint or a
    reference file/folder) and optionally ``nar`` (a checkpoint whose NAR half replaces ``model``'s); the codec
    is the ``codec`` setting (default: the one the model was trained on)."""

    task = "tts"
    settings_class = ValleSettings
    components = {"model": True, "nar": False}
    main_component = "model"
    settings = ValleSettings()

    def __init__(self, model: Valle, symbols: Sequence[str], codec: EncodecCodec, decoding: ValleDecodingConfig,
                 language: str = "en-us", device: str | torch.device = "cpu"):  # fmt: skip
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.table = SymbolTable(symbols)
        self.codec = codec.to(self.device)
        if codec.num_quantizers < model.num_quantizers:
            raise CodecError(f"codec gives {codec.num_quantizers} codebooks, the model needs {model.num_quantizers}")
        self.decoding = decoding
        self.language = language
        self.sample_rate = codec.sample_rate

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset({"tts"}), audio_prompt=True, prompt_text=True, continuation=True)

    @classmethod
    def saved_settings(cls, components: Mapping[str, Optional[str]]) -> Dict[str, Any]:
        """The decoding section of an Echelon checkpoint's config (none for a reference checkpoint)."""
        try:
            cdir = ckpt.resolve_checkpoint_dir(components["model"])
        except ckpt.CheckpointError:
            return {}
        return dict(ckpt.read_config(cdir).get("decoding") or {})

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: ValleSettings,
                        device: str = "cpu") -> "ValleTTS":
        model, cfg = load_valle(components["model"])
        if components.get("nar"):
            take_nar(model, cfg, components["nar"])
        codec = EncodecCodec.load(settings.codec or cfg.data.codec, cfg.data.codec_bandwidth)
        tts = cls(model, cfg.data.symbols, codec, settings.decoding(), cfg.data.language, device)
        tts.settings = settings
        return tts

    @classmethod
    def from_path(cls, path, device: str = "cpu", codec: Optional[str] = None) -> "ValleTTS":
        """An Echelon checkpoint or a reference file/folder (see :func:`load_valle`) with its saved settings."""
        return load_pipeline({"pipeline": "valle", "components": {"model": str(path)}},
                             [f"infer.codec={codec}"] if codec else [], device)

    from_echelon = from_checkpoint = from_path

    @classmethod
    def from_reference(cls, weights, symbols_file, args_json=None, model_config: Optional[ValleModelConfig] = None,
                       codec: str = "facebook/encodec_24khz", device: str = "cpu") -> "ValleTTS":  # fmt: skip
        """A lifeiteng/Amphion checkpoint (file or accelerate folder) with its symbol file; sizes from Amphion's
        ``args.json`` or ``model_config``."""
        if model_config is None and args_json is None:
            raise ValueError("from_reference needs args_json (Amphion) or model_config (sizes, heads, prefix mode)")
        cfg = model_config if model_config is not None else config_from_amphion_args(args_json)
        model = Valle.from_config(cfg)
        load_reference_checkpoint(model, weights)
        return cls(model, read_symbol_file(symbols_file), EncodecCodec.load(codec), ValleDecodingConfig(), device=device)

    # ------------------------------------------------------------------ generation
    def _ids(self, text: str, where: str) -> torch.Tensor:
        return torch.tensor(self.table.encode(phoneme_tokens(text, self.language), source=where))

    def _codes(self, audio: AudioInput, seconds: Optional[float] = None) -> torch.Tensor:
        wav = load_input(audio, self.codec.sample_rate).waveform
        if seconds is not None:
            wav = wav[: int(seconds * self.codec.sample_rate)]
        return self.codec.encode(wav, self.codec.sample_rate)[:, : self.model.num_quantizers]

    @torch.no_grad()
    def generate_codes(self, texts: Sequence[torch.Tensor], prompts: Sequence[torch.Tensor], seed: Optional[int] = None,
                       decoding: Optional[ValleDecodingConfig] = None) -> List[torch.Tensor]:  # fmt: skip
        """Batched: phoneme ids ``(S_b,)`` and prompt codes ``(P_b, Q)`` -> new codes ``(G_b, Q)`` per item."""
        text = torch.nn.utils.rnn.pad_sequence(list(texts), batch_first=True).to(self.device)
        prompt = torch.nn.utils.rnn.pad_sequence(list(prompts), batch_first=True).to(self.device)
        text_lens = torch.tensor([len(t) for t in texts], device=self.device)
        prompt_lens = torch.tensor([len(p) for p in prompts], device=self.device)
        # one generator per item (item_seed(seed, i)): item i samples the same alone or in any batch
        start = self.seed_or_default(seed)
        generators = [torch.Generator(self.device).manual_seed(self.item_seed(start, i)) for i in range(len(texts))]
        codes, _ = synthesize_codes(self.model, text, text_lens, prompt, prompt_lens, decoding or self.decoding, generators)
        return codes

    def voice(self, given: Voice) -> Tuple[torch.Tensor, str]:
        """The prompt's codes ``(P, Q)`` (encoded once per prompt) and its transcript."""
        return self._codes(given.prompt), given.prompt_text.strip()

    def synthesize_piece(self, text: str, voice: Tuple[torch.Tensor, str], generator: torch.Generator):
        """One sentence after the prompt transcript (cross-sentence prompting, as trained) -> decoded codes."""
        ids = self._ids(f"{voice[1]} {text.strip()}", f"text {text[:40]!r}")
        codes = self.generate_codes([ids], [voice[0]], seed=generator.initial_seed())[0]
        return self.codec.decode(codes)

    def continue_speech(self, prompts: Sequence[AudioInput], transcripts: Sequence[str], prompt_seconds: float = 3.0,
                        seed: Optional[int] = None) -> List[Audio]:  # fmt: skip
        """Continuation (the paper's protocol): the first ``prompt_seconds`` of each utterance + its whole
        transcript; returns prompt + continuation decoded together."""
        ids = [self._ids(t, f"transcript {i}") for i, t in enumerate(transcripts)]
        heads = [self._codes(p, prompt_seconds) for p in prompts]
        codes = self.generate_codes(ids, heads, seed)
        return [Audio(self.codec.decode(torch.cat([h, c.cpu()])), self.sample_rate) for h, c in zip(heads, codes)]


def read_experiment_config(path: Path) -> ValleExperimentConfig:
    return validate(ckpt.read_config(path), ValleExperimentConfig)


@register("inference", "valle")
class ValleInference(TextToSpeechInference):
    """``echelon-infer`` runner of VALL-E: the TTS inputs plus continuation (``--continuation``, or jobs with
    ``"continuation": true``: ``prompt`` is the utterance, ``text`` its whole transcript)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        TextToSpeechInference.add_arguments(parser)
        parser.add_argument("--continuation", action="store_true", help="continue --prompt's first prompt_seconds")

    def items(self, args: argparse.Namespace) -> List[Item]:
        items = super().items(args)
        for item in items:
            item.data["continuation"] = bool(item.data["job"].get("continuation")) or args.continuation
        return items

    def process(self, item: Item) -> Audio:
        d, tts = item.data, self.pipeline
        if not d["continuation"]:
            return super().process(item)
        if d["prompt"] is None:
            raise ValueError("continuation needs the utterance as its prompt")
        seed = tts.item_seed(self.base_seed, d["index"])
        return tts.continue_speech([d["prompt"]], [d["text"]], tts.settings.prompt_seconds, seed)[0]
