"""ONNX export and ONNX Runtime sessions shared by every exportable model.

:func:`export_graph` traces a module with PyTorch's TorchScript-based exporter (``dynamo=False``: the dynamo
exporter needs ``onnxscript``, and the traced graphs of these models already have dynamic lengths), writes the
file atomically and stores string metadata in the model's ``metadata_props``. :func:`session` opens a graph on
the CPU with a given number of intra-op threads (default: torch's), on one CPU arena shared by every session of
the process and kept from growing with the input lengths seen (:data:`ARENA_INITIAL_BYTES`).
:func:`cached_graph_dir` is where a model's own runtime graphs live: beside its checkpoint, keyed by the
weights' sha256, or under the user cache when the checkpoint's folder is read-only.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from models.base import checkpoint as ckpt
from modules.vocoders.amp import PrecisionError
from utils.io import atomic_path, make_temp_dir, publish_dir

BACKENDS = ("torch", "onnxruntime")
OPSET = 15  # Piper's opset: its runtime and sherpa-onnx read it
CACHE_ENV = "ECHELON_ONNX_CACHE"
# how long an idle intra-op worker spins before it sleeps (see :func:`session`); joe voice, 2 threads, the
# exported graph beside two CPU-bound processes: 0.310 s (0.304 s never spinning, 0.334 s onnxruntime's default)
SPIN_MICROSECONDS = 200


class OnnxExportError(RuntimeError):
    """A model that cannot be exported (the message says what and why)."""


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def on_graphs(backend: Optional[str], device: str | torch.device) -> bool:
    """Whether ``backend`` (None: torch) runs exported graphs; ValueError for an unknown backend, or for
    onnxruntime on any device but the CPU."""
    if check_backend(backend or "torch") == "onnxruntime" and torch.device(device).type != "cpu":
        raise ValueError(f"the onnxruntime backend runs on the CPU; got device {device!r}")
    return backend == "onnxruntime"


def check_float32(precision: str) -> None:
    """:class:`~modules.vocoders.amp.PrecisionError` for any vocoder precision but float32 on exported graphs:
    they compute in float32, and the bfloat16 switch acts on the torch fast path's AMP blocks only."""
    if precision != "float32":
        raise PrecisionError(f"vocoder_precision {precision} needs the torch backend (the onnxruntime backend runs "
                             "the exported float32 graphs)")


class ModelGraph(torch.nn.Module):
    """A graph to export around ``model``: a subclass's ``forward`` is the arithmetic traced, ``self.model``
    holds the weights (so the export's initializers keep the model's parameter names)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model


def last_axis_length(x: torch.Tensor) -> torch.Tensor:
    """``(1,)`` int64 length of ``x``'s last axis, a graph value while tracing."""
    return torch._shape_as_tensor(x)[-1:].to(torch.long)


class PromptStyleGraph(ModelGraph):
    """``prompt_mel (1, n_mels, Tm) -> g (1, gin, 1)``: ``model.style(mel, lengths)`` on one whole prompt (the
    HierSpeech++ synthesizer's and TTV's style encoders)."""

    def forward(self, prompt_mel):
        return self.model.style(prompt_mel, last_axis_length(prompt_mel))


def run_prompt_styles(style_session, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
    """A :class:`PromptStyleGraph` session on a batch: prompt log-mels ``(B, n_mels, Tm)`` (zero-padded) +
    lengths ``(B,)`` -> styles ``(B, gin, 1)``, each row on its own length (what the masked torch path gives)."""
    rows = [style_session.run(None, {"prompt_mel": mel[b:b + 1, :, :int(n)].detach().cpu().float().numpy()})[0]
            for b, n in enumerate(mel_lengths.tolist())]
    return torch.from_numpy(np.concatenate(rows))


def decode_in_windows(decode: Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor], z: torch.Tensor,
                      g: Optional[torch.Tensor], halo: int, hop: int, min_frames: int,
                      windows: int = 2) -> torch.Tensor:
    """``decode(z, g)`` for a convolutional decoder ``(B, C, T) -> (B, 1, T * hop)``, traceable, computed as
    ``windows`` overlapping time windows stacked on the batch axis when ``T >= min_frames`` (one pass below).

    Why: onnxruntime's blocked-channel (NCHWc) convolutions, the fastest it has on one thread, split a
    convolution's work by batch item x set of 64 output channels x output row; the decoder's late layers (32 or
    64 channels, height-1 images) are then one work item and a second thread idles. With the windows on the
    batch axis every layer has as many items as windows. Window ``i`` keeps frames ``[i * size, (i + 1) * size)``
    (``size = ceil(T / n)``) and reads ``halo`` frames beyond them where it has neighbours; its other edges are
    the signal's own ends, so with ``halo`` >= the decoder's receptive radius in frames (``receptive_frames()``)
    every output sample is computed from the same inputs as in one pass (equal up to float rounding: a runtime
    may sum a convolution in another order at another width). The cost is the halo: ``halo`` frames per window
    edge shared with a neighbour, on one thread as on several.

    z: (B, C, T); g: optional (B, gin, 1); returns (B, 1, T * hop).
    """
    shape = torch._shape_as_tensor(z).to(torch.long)
    batch, frames = shape[0], shape[2]
    n = 1 + (frames >= min_frames).long() * (windows - 1)
    size = torch.div(frames + n - 1, n, rounding_mode="floor")  # frames each window keeps
    width = torch.minimum(size + halo * torch.clamp(n - 1, max=2), frames)
    starts = torch.minimum(torch.clamp(torch.arange(n) * size - halo, min=0), frames - width)  # (n,)
    # (B, C, T) -> (n * B, C, width), window-major; sizes only as index tensors, so the graph stays dynamic
    index = starts.unsqueeze(1) + torch.arange(width).unsqueeze(0)  # (n, width)
    zw = z[:, :, index].permute(2, 0, 1, 3).flatten(0, 1)
    gw = None if g is None else g.index_select(0, torch.remainder(torch.arange(n * batch), batch))
    y = decode(zw, gw).reshape(-1)  # (n * B, 1, width * hop) flattened
    # output sample s of item b (frame s // hop) comes from window i = s // (size * hop), at s - start_i * hop
    sample = torch.arange(frames * hop)
    window = torch.div(sample, size * hop, rounding_mode="floor")
    source = window * (batch * width * hop) + sample - starts.index_select(0, window) * hop  # item 0
    source = source.unsqueeze(0) + (torch.arange(batch) * (width * hop)).unsqueeze(1)  # (B, T * hop)
    return y[source].unsqueeze(1)


def export_graph(module: torch.nn.Module, args: Tuple[torch.Tensor, ...], path: str | os.PathLike,
                 input_names: Sequence[str], output_names: Sequence[str],
                 dynamic_axes: Mapping[str, Mapping[int, str]], metadata: Optional[Mapping[str, object]] = None,
                 opset: int = OPSET) -> Path:
    """Trace ``module(*args)`` into ``path`` (atomic) with dynamic axes and ``metadata`` (values as strings)."""
    import onnx

    path = Path(path)
    module = module.eval()
    with atomic_path(path, ".onnx") as tmp, torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about Python values it records as constants (shape checks, error messages)
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=opset, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                          do_constant_folding=True)
        if metadata:
            graph = onnx.load(str(tmp))
            for key, value in metadata.items():
                entry = graph.metadata_props.add()
                entry.key, entry.value = str(key), str(value)
            onnx.save(graph, str(tmp))
    return path


# The CPU memory arena every session of this module shares (``session.use_env_allocators``), registered once per
# process. Speech graphs see a new input length on nearly every call, and onnxruntime's defaults let a serving
# process grow with the number of lengths seen (joe voice, 400 one-shot requests of 40-90 characters: RSS +20 %):
# * the memory pattern (``enable_mem_pattern``) plans one block per distinct input shape and takes it from the
#   arena whole; blocks of ever new sizes fragment the arena, which then extends (in power-of-two regions) and
#   never gives anything back. Without it each tensor is taken from the arena on its own: the same outputs
#   (bit-exact) at the same CPU time (measured within 2 %), and the arena stays at one request's working set;
# * a run that needs more than the arena holds (a long utterance: a 15-s one needs ~300 MB) extends it, and the
#   extension stays. Every run therefore asks onnxruntime to shrink the arena afterwards
#   (``memory.enable_memory_arena_shrinkage``), which frees the regions left wholly unused: never the first one,
#   :data:`ARENA_INITIAL_BYTES`, which holds a sentence of several seconds (joe: ~20 MB per second of audio), so
#   ordinary requests neither extend nor shrink (a first region of a few MB would be re-allocated, and its pages
#   faulted in again, on every run: +25 % CPU). A graph whose every run needs far more pays that on each run:
#   SpeechSR's 10-s windows (onnxruntime backend; ~250 / ~600 MB at 24 / 48 kHz) take ~5 % more CPU than with
#   onnxruntime's defaults, half of it for giving that memory back, half for the memory pattern, which its
#   equal-sized windows would reuse.
ARENA_INITIAL_BYTES = 128 << 20
_ARENA_LOCK = threading.Lock()
_arena_registered = False


def _register_shared_arena(onnxruntime) -> None:
    global _arena_registered
    with _ARENA_LOCK:
        if _arena_registered:
            return
        cpu = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                        onnxruntime.OrtMemType.DEFAULT)
        # arena_extend_strategy 0 = kNextPowerOfTwo: the only strategy that keeps the first region on shrinking
        onnxruntime.create_and_register_allocator(cpu, onnxruntime.OrtArenaCfg(
            {"arena_extend_strategy": 0, "initial_chunk_size_bytes": ARENA_INITIAL_BYTES}))
        _arena_registered = True


class Session:
    """An ``onnxruntime.InferenceSession`` whose :meth:`run` gives the shared arena's unused extensions back after
    each call (see :data:`ARENA_INITIAL_BYTES`); every other attribute is the session's own."""

    def __init__(self, inner, run_options):
        self.inner, self.run_options = inner, run_options

    def run(self, output_names, input_feed, run_options=None):
        return self.inner.run(output_names, input_feed, run_options or self.run_options)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def session(path: str | os.PathLike, threads: Optional[int] = None) -> Session:
    """An ONNX Runtime CPU session; ``threads`` intra-op threads (default: ``torch.get_num_threads()``), on the
    process's shared CPU arena without memory patterns (see :data:`ARENA_INITIAL_BYTES`).

    With more than one thread the workers spin for at most :data:`SPIN_MICROSECONDS` after a parallel operator,
    then sleep. onnxruntime's default spins far longer: on a machine whose cores are shared (other processes,
    other sessions of the same pipeline) such workers steal the time the computation needs (joe voice, 2 threads,
    2 busy cores: 0.89 s without spinning, 2.0 s with it). Never spinning costs a wake-up per operator instead,
    which short utterances feel (joe, 2 threads, 2 s of speech: 0.064 s vs 0.055 s with the bounded spin).

    onnxruntime's static buffer-reuse plan is off (``enable_mem_reuse``): its search for a reusable buffer grows
    faster than linearly with the graph, and made creating the full-size HierSpeech++ synthesis graph's session
    (10 k nodes) take 12.5 s instead of 1.8 s. Tensors still go back to the shared arena when their last
    reader has run, which reuses their memory at run time: that graph's run time and peak RSS, and the joe voice's
    synthesis time, were the same either way (``docs/perf-log.md``, twelfth pass)."""
    import onnxruntime

    _register_shared_arena(onnxruntime)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    if options.intra_op_num_threads > 1:
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(SPIN_MICROSECONDS))
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = False
    options.enable_mem_reuse = False
    options.add_session_config_entry("session.use_env_allocators", "1")
    run_options = onnxruntime.RunOptions()
    run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return Session(onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]), run_options)


def weights_sha256(ckpt_dir: Path, component: str) -> str:
    """sha256 of a checkpoint's weights file of ``component`` (from ``meta.json`` when recorded there)."""
    record = ckpt.read_meta(ckpt_dir).get("files", {})
    for name, entry in record.items():
        if Path(name).stem == component and isinstance(entry, Mapping) and "sha256" in entry:
            return str(entry["sha256"])
    files = sorted(ckpt_dir.glob(f"{component}.*"))
    if not files:
        raise ckpt.CheckpointNotFoundError(f"{ckpt_dir}: no weights file for {component!r}")
    return ckpt.sha256_of(files[0])


def _writable(folder: Path) -> bool:
    probe = folder if folder.exists() else folder.parent
    return os.access(probe, os.W_OK)


def user_cache_dir(sha256: str) -> Path:
    """``$ECHELON_ONNX_CACHE`` (default ``~/.cache/echelon/onnx``)/``<sha256[:16]>``: graphs of weights whose
    own folder is read-only (a package's bundled release)."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "echelon" / "onnx")) / sha256[:16]


def cached_graph_dir(source: Path, sha256: str) -> Path:
    """Where the runtime graphs of the weights with ``sha256`` live: ``<source>/onnx/<sha256[:16]>`` when that
    folder is writable, else :func:`user_cache_dir`."""
    beside = source / "onnx" / sha256[:16]
    if beside.is_dir() or _writable(source):
        return beside
    return user_cache_dir(sha256)


def graph_dir_for(source: Path, component: str, name: str) -> Path:
    """The folder of the runtime graphs ``name`` (what they are and their version, e.g. ``speechsr48k-v1``) of
    the weights at ``source``: an official weights file (keyed by its sha256, cached beside it) or an Echelon
    checkpoint directory (keyed by the sha256 of its ``component`` weights)."""
    if source.is_file():
        folder = cached_graph_dir(source.parent, ckpt.sha256_of(source))
    else:
        cdir = ckpt.resolve_checkpoint_dir(source)
        folder = cached_graph_dir(cdir, weights_sha256(cdir, component))
    return folder.with_name(f"{folder.name}-{name}")


def ensure_graphs(folder: Path, names: Sequence[str], write_all: Callable[[Path], None]) -> Dict[str, Path]:
    """``name -> folder/name.onnx``; when one is missing, ``write_all(tmp)`` writes every graph into a fresh
    folder that then replaces ``folder`` atomically (a crashed export leaves no half-written cache).

    A ``folder`` named ``<stem>-v<N>`` (a graph format version) replaces the same weights' graphs of other
    versions once it is written: a version bump would otherwise leave the old export (tens of MB) behind forever.
    """
    paths = {name: folder / f"{name}.onnx" for name in names}
    if not all(path.is_file() for path in paths.values()):
        tmp = make_temp_dir(folder.parent)
        try:
            write_all(tmp)
            if not all(path.is_file() for path in paths.values()):
                try:
                    publish_dir(tmp, folder)
                except OSError:  # another process published the same graphs (same weights hash) meanwhile
                    if not all(path.is_file() for path in paths.values()):
                        raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # still there only when not published
        _remove_other_versions(folder)
    return paths


def _remove_other_versions(folder: Path) -> None:
    versioned = re.fullmatch(r"(.+)-v\d+", folder.name)
    if versioned is None:
        return
    same_weights = re.compile(re.escape(versioned.group(1)) + r"-v\d+")
    for other in folder.parent.iterdir():
        if other != folder and other.is_dir() and same_weights.fullmatch(other.name):
            shutil.rmtree(other, ignore_errors=True)


def own_weight_copies(graph) -> int:
    """Replace every ``Identity`` that reads an initializer by a copy of that initializer under the Identity's
    output name; returns how many there were. torch's exporter stores parameters of equal values once and reads
    the others through ``Identity`` nodes (HierSpeech++'s style encoder initialises its attention's key conv from
    the query conv; zero-initialised layers, such as the DiT flows' adaLN outputs of untrained weights, all
    coincide), and onnxruntime's quantiser needs each Conv / Gemm weight as an initializer of its own: it fails on
    a weight behind an Identity ("Expected ... to be an initializer"), and transposes a Gemm weight in place, once
    per node that reads it. The copies cost what the model's own parameters would."""
    import onnx

    tensors = {tensor.name: tensor for tensor in graph.initializer}
    outputs = {value.name for value in graph.output}
    aliases = [node for node in graph.node
               if node.op_type == "Identity" and node.input[0] in tensors and node.output[0] not in outputs]
    for node in aliases:
        copy = onnx.TensorProto()
        copy.CopyFrom(tensors[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
    dropped = {id(node) for node in aliases}
    kept = [node for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    return len(aliases)


def quantize_int8(path: str | os.PathLike, op_types: Sequence[str] = ("MatMul", "Conv"),
                  exclude_nodes: Sequence[str] = (),
                  calibration: Optional[Sequence[Mapping[str, object]]] = None) -> Path:
    """Replace the graph at ``path`` by onnxruntime's int8 quantisation of ``op_types`` but the nodes named in
    ``exclude_nodes``; metadata is kept. Dynamic (the default): int8 weights, each activation quantised on every
    call from its own range. Static, given ``calibration`` (input feeds the graph runs on to fix every
    activation's range once): int8 weights, uint8 activations of fixed scale, in QDQ form, which onnxruntime's CPU
    provider fuses into its QLinearConv / QLinearMatMul kernels."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    class Feeds(CalibrationDataReader):
        def __init__(self, feeds):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    path = Path(path)
    model = onnx.load(str(path))
    metadata = {p.key: p.value for p in model.metadata_props}
    own_weight_copies(model.graph)
    exclude_nodes = list(exclude_nodes) + layout_identities(model.graph)  # exact in float; int8 would only add error
    # DefaultTensorType: onnx's shape inference loses the type of some tensors the quantiser makes itself (a Gemm
    # it splits into MatMul + Add, in the DiT flows); every graph exported here computes in float32
    options = dict(op_types_to_quantize=list(op_types), nodes_to_exclude=list(exclude_nodes),
                   weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    with atomic_path(path, ".onnx") as tmp:
        if calibration is None:
            quantize_dynamic(model, str(tmp), **options)
        else:
            quantize_static(model, str(tmp), Feeds(calibration), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, **options)
        graph = onnx.load(str(tmp))
        known = {p.key for p in graph.metadata_props}
        for key, value in metadata.items():
            if key not in known:
                entry = graph.metadata_props.add()
                entry.key, entry.value = key, value
        onnx.save(graph, str(tmp))
    return path


class _Conv1dAs2d(torch.nn.Module):
    """A ``Conv1d`` / ``ConvTranspose1d`` run as the 2-D convolution of a height-1 image: onnxruntime's CPU
    provider lays 2-D convolutions out in blocked channels (NCHWc) with faster kernels, which it does not do for
    1-D ones (measured ~15 % less CPU time on a dilated residual stack); same numbers up to float rounding.

    ``images``: the module takes and returns the image ``(B, C, 1, T)`` itself (a chain that stays 4-D, see
    :class:`LayoutIdentity`); otherwise ``(B, C, T)``, squeezed around the 2-D convolution."""

    def __init__(self, conv: torch.nn.Module, images: bool = False):
        super().__init__()
        self.images = images
        self.transposed = isinstance(conv, torch.nn.ConvTranspose1d)
        self.weight = torch.nn.Parameter(conv.weight.detach().unsqueeze(2), requires_grad=False)
        self.bias = None if conv.bias is None else torch.nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.stride, self.padding = (1, conv.stride[0]), (0, conv.padding[0])
        self.dilation, self.groups = (1, conv.dilation[0]), conv.groups
        self.output_padding = (0, conv.output_padding[0]) if self.transposed else None
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise OnnxExportError(f"{type(conv).__name__} with padding {conv.padding!r}/{conv.padding_mode}: "
                                  "only explicit zero padding is rewritten")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if self.images else x.unsqueeze(2)
        if self.transposed:
            y = torch.nn.functional.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                                     self.output_padding, self.groups, self.dilation)
        else:
            y = torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                           self.groups)
        return y if self.images else y.squeeze(2)


class _Conv1dInImages(torch.nn.Module):
    """A 1-D convolution kept 1-D inside a chain of height-1 images: ``(B, C, 1, T) -> (B, C_out, 1, T')``."""

    def __init__(self, conv: torch.nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.squeeze(2)).unsqueeze(2)


class LayoutIdentity(torch.nn.Module):
    """``(B, C, 1, T)`` -> the same values through a depthwise 1x1 convolution of ones (exact), then ``activation``
    (elementwise; onnxruntime fuses a LeakyReLU into the convolution).

    Why: onnxruntime keeps a 2-D convolution's output in its blocked-channel layout (NCHWc) for whatever blocked
    operator reads it next, but a LeakyReLU, and an Add with a tensor that never was blocked (a transposed
    convolution's output), run in plain layout, so a reorder out and one back in surround every convolution of a
    HiFi-GAN residual stack. As a convolution the activation stays blocked, and put behind a transposed
    convolution it makes the residual stream blocked too: then the whole stack runs without reorders.
    :func:`quantize_int8` leaves these convolutions in float (:func:`layout_identities`)."""

    def __init__(self, channels: int, activation: Optional[torch.nn.Module] = None):
        super().__init__()
        self.channels = channels
        self.activation = activation
        self.register_buffer("ones", torch.ones(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.conv2d(x, self.ones, groups=self.channels)
        return y if self.activation is None else self.activation(y)


def layout_identities(graph) -> list:
    """Names of the ``Conv`` nodes of an ONNX graph that are :class:`LayoutIdentity` convolutions (depthwise,
    1x1, weights all ones, no bias)."""
    from onnx import numpy_helper

    # the ones are a buffer, not a parameter: torch's exporter writes them as Constant nodes
    weights = {t.name: t for t in graph.initializer}
    weights.update({node.output[0]: attr.t for node in graph.node if node.op_type == "Constant"
                    for attr in node.attribute if attr.name == "value"})
    found = []
    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) != 2 or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if w.ndim == 4 and w.shape[1:] == (1, 1, 1) and group == w.shape[0] and np.all(w == 1):
            found.append(node.name)
    return found


# Convolutions with fewer output channels than this stay 1-D in :func:`convs_as_2d`. The blocked layout computes
# output channels in blocks of 8 (AVX2) or 16 (AVX-512), so a 1-channel output (a vocoder's ``conv_post``) costs
# 8-16 channels' work there: the joe voice's conv_post took 20.6 ms as a 2-D convolution and 10.8 ms as a 1-D
# one (1 thread, AVX2 EPYC), ~1 % of the whole graph.
MIN_BLOCKED_CHANNELS = 8


def convs_as_2d(model: torch.nn.Module, images: bool = False) -> torch.nn.Module:
    """A copy of ``model`` (weight norm already folded) whose 1-D convolutions with at least
    :data:`MIN_BLOCKED_CHANNELS` output channels run as 2-D ones, for export. ``images``: every convolution
    takes and returns height-1 images ``(B, C, 1, T)`` (the caller feeds the model those), so that nothing between
    two convolutions is squeezed back to 1-D."""
    import copy

    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if not isinstance(child, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) or child._forward_pre_hooks:
                continue
            if child.out_channels >= MIN_BLOCKED_CHANNELS:
                setattr(module, child_name, _Conv1dAs2d(child, images))
            elif images:
                setattr(module, child_name, _Conv1dInImages(child))
    return model
