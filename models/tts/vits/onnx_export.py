"""VITS -> ONNX: Piper's graph interface (for Piper and sherpa-onnx) and Echelon's own two-stage runtime graphs.

**Piper interface** (:func:`export_piper`): one graph, inputs ``input`` (int64 ``(1, T)`` phoneme ids),
``input_lengths`` (int64 ``(1,)``), ``scales`` (float32 ``(3,)``: noise, length, noise_w) and, for
multi-speaker voices, ``sid`` (int64 ``(1,)``); output ``output`` float32 ``(1, 1, 1, samples)``. The noise of
the prior and of the stochastic duration predictor is drawn inside the graph (``RandomNormalLike``), so only zero
noise is reproducible across runtimes. Beside it :func:`voice_config` writes ``FILE.onnx.json`` in Piper's voice
format and the graph carries the metadata sherpa-onnx reads (``model_type=vits``, ``comment=piper``, ...).

**Runtime graphs** (:func:`export_runtime`): the same arithmetic cut where the output length becomes known, so
that the caller draws both noises with torch's generator exactly as :meth:`VITS.infer` does (seeded outputs equal
the torch path):

* ``text``: ids, lengths, scales, ``duration_noise (1, 2, T)``, [sid] -> prior ``m_p, logs_p (1, C, T)`` and
  ``w_ceil (1, 1, T)`` frames per symbol;
* ``acoustic``: ``m_p, logs_p, w_ceil``, lengths, scales, ``noise (1, C, frames)``, [sid] -> ``wav (1, 1, samples)``;
  ``acoustic_windows`` is the same graph with the decoder's time windows, for sessions of two or more threads.

Both the Piper graph and ``acoustic_windows`` decode an utterance of :data:`WINDOW_MIN_FRAMES` frames or more
with the decoder's narrow late stages as two overlapping time windows stacked on the batch axis
(:class:`_Stages`, :func:`window_cut`), so that onnxruntime keeps a second thread busy; the waveform is the
one-pass one.

Everything of inference is in the graphs; the text front end (espeak-ng) stays in Python, as in Piper.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from models.base import checkpoint as ckpt
from models.base.onnx_backend import (MIN_BLOCKED_CHANNELS, LayoutIdentity, convs_as_2d, decode_in_windows,
                                      export_graph)
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.model import VITS
from modules.commons import generate_path, sequence_mask
from modules.vocoders.hifigan import HiFiGANGenerator
from utils.config import ConfigError, validate
from utils.io import atomic_write_text
from utils.registry import register

log = logging.getLogger(__name__)

PIPER_INPUTS = ("input", "input_lengths", "scales")
EXAMPLE_SYMBOLS = 24  # length of the tracing example (the graphs are dynamic in it)
# Windowed graphs (_Stages): utterances of at least this many latent frames decode as two time windows.
# Piper interface, joe voice (86 frames/s), ratios to Piper's file at 1 / 2 threads, windows vs one pass:
# 91 frames 0.94 / 1.00 vs 1.15 / 1.07; 173 frames 1.05 / 1.15 vs 1.19 / 0.98; 564 frames 1.16 / 1.08 vs
# 1.19 / 0.91 (onnxruntime's default session options; benchmarks/README.md; windows cut on the latent then).
WINDOW_MIN_FRAMES = 160
# The windows start at the first up-sampling stage of at most this many channels: the stages before it have
# enough output channels for onnxruntime to give both threads work without windows, and they run whole, so
# the halo is paid only in the tail, where it is small (joe: 12 samples at 8 per frame, against 16 frames when
# the windows were cut on the latent: 14 % more decoder work for a 2.6-s sentence). Joe (stages of 128, 64 and
# 32 channels), the 24 sentences of benchmarks/serve_vs_piper.py, 2 threads, text + acoustic graphs back to
# back, best of 4 in 3 interleaved processes: 127.5-127.7 ms a text with the 64- and 32-channel stages in
# windows, 129.1-134.8 with the whole decoder in windows, 145 with only the 32-channel stage and 172 with none
# (2026-11-26, 2-core AMD EPYC Zen 4).
WINDOW_STAGE_CHANNELS = 64


def window_cut(dec: HiFiGANGenerator) -> Tuple[int, int]:
    """(stage, halo) of the decoder's time windows: ``dec.tail(., stage)`` runs in windows that read ``halo``
    samples of its input beyond their edges (:data:`WINDOW_STAGE_CHANNELS`). A decoder with no stage that narrow
    gets stage 0: all of it after ``conv_pre`` in windows."""
    stage = next((i for i, up in enumerate(dec.ups) if up.out_channels <= WINDOW_STAGE_CHANNELS), 0)
    return stage, dec.tail_reach(stage)


class _Stages(nn.Module):
    """The inference arithmetic of :meth:`VITS.infer` in two traceable halves (batch of one).

    With ``windows`` (:func:`window_cut` of the decoder) the decoder runs an utterance of at least
    :data:`WINDOW_MIN_FRAMES` latent frames as its head whole, then its tail as two time windows on the batch
    axis (:func:`decode_in_windows`; the waveform is the one-pass one): onnxruntime's blocked-channel
    convolutions put a second thread to work on the decoder's late 32- and 64-channel layers only for a batch of
    two. On one thread the windows cost their halo, so Echelon's runtime keeps a graph without them for one
    thread.
    """

    def __init__(self, model: VITS, windows: Optional[Tuple[int, int]] = None):
        super().__init__()
        self.model = model
        self.windows = windows

    def speaker(self, sid: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return None if sid is None or self.model.n_speakers <= 1 else self.model.emb_g(sid).unsqueeze(-1)

    def text(self, ids, lengths, scales, duration_noise, g):
        """-> ``m_p, logs_p (B, C, T)``, ``w_ceil (B, 1, T)``."""
        m = self.model
        h, m_p, logs_p, x_mask = m.enc_p(ids, lengths)
        if m.use_sdp:
            logw = m.dp(h, x_mask, g=g, reverse=True, noise_scale=scales[2], noise=duration_noise)
        else:
            logw = m.dp(h, x_mask, g=g)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * scales[1])
        return m_p, logs_p, w_ceil

    @staticmethod
    def frames(w_ceil: torch.Tensor) -> torch.Tensor:
        """``(B,)`` latent frames of each item, as :meth:`VITS.infer` counts them."""
        return torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()

    def acoustic(self, m_p, logs_p, w_ceil, lengths, scales, noise, g):
        """Expanded prior sample -> inverse flow -> decoder: ``wav (B, 1, frames * hop)``."""
        m = self.model
        x_mask = sequence_mask(lengths).unsqueeze(1).float()
        y_mask = sequence_mask(self.frames(w_ceil)).unsqueeze(1).float()
        attn = generate_path(w_ceil, x_mask.unsqueeze(2) * y_mask.unsqueeze(-1))
        m_p, logs_p = m.expand_prior(attn, m_p), m.expand_prior(attn, logs_p)
        if noise is None:
            noise = torch.randn_like(m_p)
        z_p = m_p + noise * torch.exp(logs_p) * scales[0]
        z = m.flow(z_p, y_mask, g=g, reverse=True)
        return self.decode(z * y_mask, g)

    def decode(self, z: torch.Tensor, g: Optional[torch.Tensor]) -> torch.Tensor:
        """Latent ``(B, C, T)`` -> waveform ``(B, 1, T * hop)``."""
        dec = self.model.dec
        if self.windows is None:
            return dec(z, g=g)
        stage, halo = self.windows
        rate = dec.stage_rate(stage)
        return decode_in_windows(lambda x, _: dec.tail(x, stage), dec.head(z, g, stage), None, halo,
                                 dec.hop_length // rate, WINDOW_MIN_FRAMES * rate)


class PiperInterface(_Stages):
    """Piper's graph: ``(input, input_lengths, scales[, sid]) -> output (B, 1, 1, samples)``; other runtimes run
    it whole on any number of threads, so its decoder takes the time windows (``windows``)."""

    def forward(self, ids, lengths, scales, sid=None):
        g = self.speaker(sid)
        m_p, logs_p, w_ceil = self.text(ids, lengths, scales, None, g)
        return self.acoustic(m_p, logs_p, w_ceil, lengths, scales, None, g).unsqueeze(1)


class TextStage(_Stages):
    def forward(self, ids, lengths, scales, duration_noise, sid=None):
        return self.text(ids, lengths, scales, duration_noise, self.speaker(sid))


class AcousticStage(_Stages):
    def forward(self, m_p, logs_p, w_ceil, lengths, scales, noise, sid=None):
        return self.acoustic(m_p, logs_p, w_ceil, lengths, scales, noise, self.speaker(sid))


def _example(model: VITS) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    vocab = model.enc_p.emb.num_embeddings
    ids = (torch.arange(EXAMPLE_SYMBOLS) * 7 % max(vocab - 1, 1) + 1).unsqueeze(0)
    sid = torch.zeros(1, dtype=torch.long) if model.n_speakers > 1 else None
    return ids, torch.tensor([EXAMPLE_SYMBOLS]), torch.tensor([0.667, 1.0, 0.8]), sid


class _ImageDecoder(nn.Module):
    """The HiFi-GAN decoder on height-1 images from its first convolution to its last, ``(B, C, T)`` in and out:
    no squeeze between two convolutions, and every residual block's input activation and every transposed
    convolution's output through a :class:`LayoutIdentity`, so that onnxruntime runs each stage's residual
    stacks in its blocked layout without reorders. Same numbers (the identities multiply by one).

    Joe voice, acoustic graph, 1 thread, AVX2 EPYC: the reorders took 67 ms of ~1,050 ms before."""

    def __init__(self, dec: HiFiGANGenerator):
        super().__init__()
        self.images = convs_as_2d(dec, images=True)
        stage_channels = [up.out_channels for up in dec.ups]
        for i, channels in enumerate(stage_channels):
            if channels < MIN_BLOCKED_CHANNELS:  # 1-D convolutions there (convs_as_2d): no blocked layout to keep
                continue
            self.images.ups[i] = nn.Sequential(self.images.ups[i], LayoutIdentity(channels))
            for block in self.images.resblocks[i * dec.num_kernels:(i + 1) * dec.num_kernels]:
                block.pre_activation = LayoutIdentity(channels, block.pre_activation)
        self.hop_length = dec.hop_length
        self.rates = [dec.stage_rate(k) for k in range(dec.num_upsamples + 1)]

    def forward(self, z: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z: (B, C, T); g: optional (B, gin, 1); returns (B, 1, T * hop)."""
        return self.images(z.unsqueeze(2), None if g is None else g.unsqueeze(2)).squeeze(2)

    def head(self, z: torch.Tensor, g: Optional[torch.Tensor] = None, stages: int = 0) -> torch.Tensor:
        """:meth:`HiFiGANGenerator.head`, ``(B, C, T)`` in and out."""
        return self.images.head(z.unsqueeze(2), None if g is None else g.unsqueeze(2), stages).squeeze(2)

    def tail(self, x: torch.Tensor, stages: int = 0) -> torch.Tensor:
        """:meth:`HiFiGANGenerator.tail`, ``(B, C, T)`` in and out."""
        return self.images.tail(x.unsqueeze(2), stages).squeeze(2)

    def stage_rate(self, stages: int) -> int:
        return self.rates[stages]


def _for_inference(model: VITS) -> VITS:
    """A copy for tracing: eval mode, weight norm folded (in ``model`` too: what inference does anyway), 1-D
    convolutions as 2-D ones (onnxruntime's faster blocked-channel kernels, :func:`convs_as_2d`), the decoder on
    images throughout (:class:`_ImageDecoder`)."""
    model = model.prepare_for_inference()
    copy = convs_as_2d(model)
    copy.dec = _ImageDecoder(model.dec)
    return copy


def sherpa_metadata(cfg: VITSExperimentConfig) -> Dict[str, object]:
    """What sherpa-onnx reads from a Piper graph's metadata (it also needs ``tokens.txt``)."""
    return {"model_type": "vits", "comment": "piper", "language": _language(cfg)["code"],
            "voice": cfg.data.espeak_voice, "has_espeak": 1, "n_speakers": max(cfg.model.n_speakers, 1),
            "sample_rate": cfg.data.sample_rate, "add_blank": 0, "echelon": "vits"}


def _language(cfg: VITSExperimentConfig) -> Dict[str, str]:
    voice = cfg.data.espeak_voice
    family, _, region = voice.partition("-")
    return {"code": f"{family}_{region.upper()}" if region else family, "family": family, "region": region.upper()}


def phoneme_id_map(cfg: VITSExperimentConfig) -> Dict[str, list]:
    """The voice's symbol -> ids map: Piper voices keep theirs; Echelon's 178-symbol table maps each symbol to
    its index (``_`` = 0 is both Piper's pad and VITS's blank).

    Piper runtimes (piper-tts, sherpa-onnx) frame a sentence as ``^ _ p1 _ p2 ... pn _ $``, and need ``^``, ``$``
    and ``_`` in the map. With blanks, Echelon's sequence is ``_ p1 _ p2 ... pn _``: so ``^`` and ``$`` map to no
    id at all and the ids Piper builds are the ones Echelon trained on (without blanks no map can do that:
    :func:`check_piper_framing`)."""
    if cfg.data.text_frontend == "piper":
        return {k: list(v) for k, v in cfg.data.phoneme_id_map.items()}
    from processors.text.piper_phonemes import BOS, EOS
    from processors.text.symbols import SYMBOLS

    return {**{symbol: [index] for index, symbol in enumerate(SYMBOLS)}, BOS: [], EOS: []}


def check_piper_framing(cfg: VITSExperimentConfig) -> None:
    """Refuse Piper's format for a voice whose ids Piper cannot build: Echelon's front end without blanks (Piper
    puts its pad between every two phonemes, the voice never saw one there)."""
    if cfg.data.text_frontend != "piper" and not cfg.data.add_blank:
        raise ConfigError("this voice uses Echelon's front end without blanks (data.add_blank false), but Piper "
                          "and sherpa-onnx put a blank between every two phonemes: its Piper .onnx would mispronounce; "
                          "run it with echelon-infer --backend onnxruntime instead")


def voice_config(cfg: VITSExperimentConfig, dataset: str = "", source: Optional[Dict[str, Any]] = None
                 ) -> Dict[str, Any]:
    """``FILE.onnx.json`` in Piper's voice format; ``source``: the Piper voice config a converted voice came with
    (its quality, language and dataset names are kept)."""
    source = source or {}
    speakers = {name: i for i, name in enumerate(cfg.data.speakers)} if cfg.model.n_speakers > 1 else {}
    id_map = phoneme_id_map(cfg)
    return {
        "audio": {"sample_rate": cfg.data.sample_rate, "quality": source.get("audio", {}).get("quality", "medium")},
        "espeak": {"voice": cfg.data.espeak_voice},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": id_map,
        "num_symbols": cfg.model.n_vocab,
        "num_speakers": max(cfg.model.n_speakers, 1),
        "speaker_id_map": speakers,
        "piper_version": "1.0.0",
        "language": source.get("language", _language(cfg)),
        "dataset": source.get("dataset", dataset),
        "echelon": {"text_frontend": cfg.data.text_frontend, "add_blank": cfg.data.add_blank},
    }


def export_piper(model: VITS, cfg: VITSExperimentConfig, out: str | Path, dataset: str = "",
                 source: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``out`` (Piper's graph), ``out.json`` (voice config) and ``tokens.txt`` (sherpa-onnx) beside it."""
    out = Path(out)
    check_piper_framing(cfg)
    if cfg.data.text_frontend != "piper":
        log.warning("%s: this voice uses Echelon's 178-symbol front end (cleaners + espeak-ng): Piper builds its ids "
                    "from the .onnx.json (^ and $ add none) but phonemises text its own way, and sherpa-onnx cannot "
                    "run it (it wants an id for ^ and $); Echelon's onnxruntime backend handles text exactly", out.name)
    module = PiperInterface(_for_inference(model), windows=window_cut(model.dec))
    ids, lengths, scales, sid = _example(model)
    args = (ids, lengths, scales) + ((sid,) if sid is not None else ())
    names = PIPER_INPUTS + (("sid",) if sid is not None else ())
    axes = {"input": {0: "batch_size", 1: "phonemes"}, "input_lengths": {0: "batch_size"},
            "output": {0: "batch_size", 3: "time"}}
    if sid is not None:
        axes["sid"] = {0: "batch_size"}
    export_graph(module, args, out, names, ["output"], axes, sherpa_metadata(cfg))
    voice = voice_config(cfg, dataset or out.stem, source)
    atomic_write_text(Path(str(out) + ".json"), json.dumps(voice, ensure_ascii=False, indent=2) + "\n")
    # sherpa-onnx reads one id per symbol; a symbol mapped to no id (``^``/``$`` above) has no line
    tokens = "".join(f"{symbol} {ids_[0]}\n" for symbol, ids_ in voice["phoneme_id_map"].items()
                     if symbol != "\n" and ids_)
    atomic_write_text(out.parent / "tokens.txt", tokens)
    return out


def export_runtime(model: VITS, text_path: Path, acoustic_path: Path, windowed_path: Optional[Path] = None) -> None:
    """Echelon's runtime graphs (see the module docstring); ``windowed_path``: the acoustic graph again with the
    decoder's time windows (:class:`_Stages`), for sessions of two or more threads."""
    copy = _for_inference(model)
    ids, lengths, scales, sid = _example(model)
    extra = (sid,) if sid is not None else ()
    names_sid = ("sid",) if sid is not None else ()
    stages = TextStage(copy)
    duration_noise = torch.zeros(1, 2, EXAMPLE_SYMBOLS)
    export_graph(stages, (ids, lengths, scales, duration_noise) + extra, text_path,
                 PIPER_INPUTS + ("duration_noise",) + names_sid, ["m_p", "logs_p", "w_ceil"],
                 {"input": {1: "phonemes"}, "duration_noise": {2: "phonemes"}, "m_p": {2: "phonemes"},
                  "logs_p": {2: "phonemes"}, "w_ceil": {2: "phonemes"}})
    with torch.no_grad():
        m_p, logs_p, w_ceil = stages(ids, lengths, scales, duration_noise, *extra)
    noise = torch.zeros(1, m_p.size(1), int(_Stages.frames(w_ceil)))
    acoustic = {acoustic_path: None}
    if windowed_path is not None:
        acoustic[windowed_path] = window_cut(model.dec)
    for path, windows in acoustic.items():
        export_graph(AcousticStage(copy, windows=windows), (m_p, logs_p, w_ceil, lengths, scales, noise) + extra,
                     path, ("m_p", "logs_p", "w_ceil", "input_lengths", "scales", "noise") + names_sid, ["wav"],
                     {"m_p": {2: "phonemes"}, "logs_p": {2: "phonemes"}, "w_ceil": {2: "phonemes"},
                      "noise": {2: "frames"}, "wav": {2: "samples"}})


@register("exporter", "vits")
def export_checkpoint(ckpt_dir: str | Path, out: str | Path) -> List[Path]:
    """``echelon-export onnx`` of a VITS checkpoint (Echelon dir, or a converted Piper voice): Piper's graph,
    its ``.onnx.json`` and sherpa-onnx's ``tokens.txt``; returns the files written."""
    if ckpt_dir is None:
        raise ckpt.CheckpointNotFoundError("VITS export needs --ckpt_dir (an Echelon VITS checkpoint or a converted "
                                           "Piper voice); there is no bundled VITS release")
    path = ckpt.resolve_checkpoint_dir(ckpt_dir)
    cfg = validate(ckpt.expect_model_type(path, "vits"), VITSExperimentConfig)
    check_piper_framing(cfg)  # before the weights are loaded
    model = VITS.from_config(cfg.model)
    ckpt.load_state_dict_strict(model, ckpt.load_model_weights(path, "generator"), str(path))
    out = Path(out)
    converted = [p / "piper_voice.onnx.json" for p in (Path(ckpt_dir), *path.parents[:2])]
    source = next((json.loads(p.read_text(encoding="utf-8")) for p in converted if p.is_file()), None)
    export_piper(model, cfg, out, dataset=Path(ckpt_dir).name, source=source)
    return [out, Path(str(out) + ".json"), out.parent / "tokens.txt"]
