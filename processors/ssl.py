"""Self-supervised speech features (wav2vec 2.0 / MMS / XLS-R / HuBERT / WavLM) through ``transformers``.

HierSpeech++ conditions on ``hidden_states[7]`` of ``facebook/mms-300m`` (24-layer wav2vec 2.0 with
*stable layer norm*): the residual stream after the 7th transformer layer, before any final LayerNorm.  We build
the encoder with only the layers needed (``num_hidden_layers = layer``), so the later layers are never loaded
nor run, and drop the final encoder LayerNorm of stable-layer-norm models (it only normalises the *last*
hidden state, which ``hidden_states[k]`` for k < num_layers never sees).  The result is exactly
``hidden_states[layer]`` of the full model (tested on a random tiny model).

Input convention (official): raw waveform in [-1, 1] at 16 kHz without feature-extractor normalisation,
zero-padded to the next multiple of 1280 samples and reflect-padded by 40 samples on both sides, which gives
exactly N / 320 frames for the padded length N (:func:`official_ssl_input`).

Offline use: a hub id is loaded from the local Hugging Face cache; if it is not there and the hub is not
reachable (no network or ``HF_HUB_OFFLINE=1``) :class:`SSLModelError` names the model and what to do.
:func:`build_random_ssl` makes a tiny *randomly initialised* wav2vec 2.0 for tests and the offline demo; it
logs a warning saying so every time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import types
from pathlib import Path
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from modules.commons import cached_derived
from modules.onednn_linear import (conv_weight_matrix, stride2_taps3_conv, stride2_taps3_matrices,
                                   time_major_conv1d, use_onednn_linear)
from processors.f0 import VC_PAD_MULTIPLE, vc_pad_source
from utils.memory import release_mapped_pages
from utils.rng import seeded
from utils.threads import map_with_side_worker, torch_threads
from utils.wording import agree, plural

__all__ = ["DEFAULT_SSL_MODEL", "DEFAULT_SSL_LAYER", "SSLModelError", "SSLFeatureExtractor", "official_ssl_input",
           "build_random_ssl", "ssl_front_end_beside"]

logger = logging.getLogger(__name__)

DEFAULT_SSL_MODEL = "facebook/mms-300m"
DEFAULT_SSL_LAYER = 7
SSL_REFLECT_PAD = 40


class SSLModelError(OSError):
    """The SSL model cannot be loaded (weights not reachable offline, bad directory, unsupported type)."""


def official_ssl_input(wav: Tensor, multiple: int = VC_PAD_MULTIPLE, reflect: int = SSL_REFLECT_PAD) -> Tensor:
    """``(B, N)`` -> ``(B, N' + 2·reflect)``: zero-pad to the next multiple of ``multiple`` (a full block more
    if already one, as the VC script does), then reflect-pad ``reflect`` samples each side; frames = N' / 320."""
    padded = vc_pad_source(wav, multiple)
    return F.pad(padded.unsqueeze(1), (reflect, reflect), mode="reflect").squeeze(1)


def _truncate(model: nn.Module, layer: int) -> nn.Module:
    """Keep ``layer`` encoder layers and drop the final LayerNorm of stable-layer-norm encoders."""
    encoder = model.encoder
    encoder.layers = encoder.layers[:layer]
    if getattr(model.config, "do_stable_layer_norm", False):
        # Pre-LN encoders normalise only the final output; hidden_states[k] is the residual stream before it.
        # (transformers >= 5 reports the un-normalised stream for k = num_layers too; 4.x normalised that one.)
        encoder.layer_norm = nn.Identity()
    model.config.num_hidden_layers = layer
    return model


class _TimeMajorConv1d(nn.Module):
    """An unpadded, undilated ``nn.Conv1d`` computed on time-major input as one GEMM over overlapping windows
    (``modules.onednn_linear.time_major_conv1d``). For wav2vec2's front end this is faster than the
    convolution kernels on CPU (the first layer, 1 -> 512 channels at the waveform rate, ~3x) and, chained
    time-major, needs no transposes around the LayerNorms. Holds the conv's own ``weight``/``bias``
    parameters, so state_dict keys are unchanged.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.kernel_size, self.stride = conv.kernel_size[0], conv.stride[0]

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        return (type(conv) is nn.Conv1d and conv.groups == 1 and conv.dilation == (1,)
                and conv.padding == (0,) and conv.padding_mode == "zeros")

    def forward_time_major(self, x: Tensor) -> Tensor:
        """``(B, T, C_in)`` -> ``(B, T', C_out)`` with ``T' = (T - kernel) // stride + 1``."""
        if torch.is_grad_enabled():  # differentiable path (the cached matrix is built without autograd)
            matrix = conv_weight_matrix(self.weight)
        elif self.kernel_size == 3 and self.stride == 2 and x.device.type == "cpu" and x.dtype == torch.float32:
            # 2.5 instead of 3 products per frame (wav2vec2's layers 2-5, 3/4 of the front end's arithmetic;
            # the gain was measured on CPU float32, other devices and dtypes keep the one-GEMM form)
            matrices = cached_derived(self, "_stride2_cache", (self.weight,),
                                      replacing((self.weight,), lambda: stride2_taps3_matrices(self.weight)))
            return stride2_taps3_conv(x, matrices, self.bias)
        else:
            matrix = cached_derived(self, "_matrix_cache", (self.weight,),
                                    replacing((self.weight,), lambda: conv_weight_matrix(self.weight).contiguous()))
        return time_major_conv1d(x, matrix, self.bias, self.kernel_size, self.stride)

    def forward(self, x: Tensor) -> Tensor:
        """Drop-in for the conv: ``(B, C_in, T)`` -> ``(B, C_out, T')`` (a transposed view)."""
        return self.forward_time_major(x.transpose(1, 2)).transpose(1, 2)


_FRONT_END_THREADS = threading.local()  # .count: torch threads for the front end in this thread (None: the caller's)


class _TimeMajorFeatureEncoder(nn.Module):
    """wav2vec2's layer-norm conv front end (conv -> LayerNorm over channels -> GELU, x7) run time-major.

    The transformers module convolves in (B, C, T) and transposes twice around every LayerNorm; here each
    layer's output is already (B, T, C), so the LayerNorms and GELUs run on contiguous memory. Wraps the same
    ``conv_layers`` (state_dict keys unchanged). Inference only: the extractor is frozen.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.conv_layers = encoder.conv_layers
        for layer in self.conv_layers:
            if not isinstance(layer.conv, _TimeMajorConv1d):
                layer.conv = _TimeMajorConv1d(layer.conv)
        self.gradient_checkpointing = False
        self._requires_grad = False

    @staticmethod
    def supports(encoder: nn.Module) -> bool:
        layers = getattr(encoder, "conv_layers", None)
        return bool(layers) and all(
            isinstance(getattr(layer, "layer_norm", None), nn.LayerNorm) and hasattr(layer, "activation")
            and (isinstance(layer.conv, _TimeMajorConv1d) or _TimeMajorConv1d.supports(layer.conv))
            and set(dict(layer.named_children())) == {"conv", "layer_norm", "activation"}
            for layer in layers)

    def _freeze_parameters(self) -> None:
        for param in self.parameters():
            param.requires_grad = False

    # Output frames computed per piece in inference (1 s of audio at wav2vec2's 320-sample hop). The first
    # layers' activations are then ~6.5 MB instead of 33 MB for a 5 s clip: a 33 MB tensor is above glibc's
    # largest mmap threshold, so each one was fresh pages (~8,000 page faults), and it did not fit in cache.
    # Measured on the MMS-300m shapes, 5 s, 1 thread: front end 185 -> 145 ms CPU, identical output.
    frames_per_piece = 50

    def _receptive_field(self) -> Tuple[int, int]:
        """(hop, window) in input samples of one output frame: frame f reads samples [f*hop, f*hop + window)."""
        hop, window = 1, 1
        for layer in self.conv_layers:
            window += (layer.conv.kernel_size - 1) * hop
            hop *= layer.conv.stride
        return hop, window

    def _run_layers(self, hidden: Tensor) -> Tensor:
        """``(B, N, 1)`` time-major samples -> ``(B, frames, C)``."""
        for layer in self.conv_layers:
            hidden = layer.layer_norm(layer.conv.forward_time_major(hidden))
            # exact GELU in place on the LayerNorm output (a fresh tensor): one allocation less per layer
            exact_gelu = getattr(layer.activation, "act", None) is F.gelu and not torch.is_grad_enabled()
            hidden = F.gelu(hidden, out=hidden) if exact_gelu else layer.activation(hidden)
        return hidden

    def forward(self, input_values: Tensor) -> Tensor:
        """``(B, N)`` waveform -> ``(B, C, frames)`` (a transposed view of time-major memory), as transformers'.

        In inference the frames are computed in pieces of :attr:`frames_per_piece`: each piece runs the whole
        conv stack on the samples its frames read (every layer's windows are the same as in one pass, since a
        piece starts at a multiple of the total stride; LayerNorm and GELU work per frame), so the result is
        the one-pass result up to the GEMMs' float rounding.
        """
        with torch_threads(getattr(_FRONT_END_THREADS, "count", None)):
            samples = input_values[:, :, None]
            hop, window = self._receptive_field()
            frames = (input_values.size(1) - window) // hop + 1
            piece = self.frames_per_piece
            if torch.is_grad_enabled() or frames <= 2 * piece:
                return self._run_layers(samples).transpose(1, 2)
            channels = self.conv_layers[-1].conv.weight.size(0)
            out = samples.new_empty(samples.size(0), frames, channels)

            def run_piece(start: int) -> None:
                stop = min(start + piece, frames)
                out[:, start:stop] = self._run_layers(samples[:, start * hop:(stop - 1) * hop + window])

            # beside F0 (run_beside), the F0 worker takes pieces too once its F0 is done
            map_with_side_worker(run_piece, range(0, frames, piece))
            return out.transpose(1, 2)


def _fast_front_end(model: nn.Module) -> None:
    """Run the conv front end time-major (layer-norm front ends), else at least its first conv as one GEMM."""
    encoder = getattr(model, "feature_extractor", None)
    if encoder is None:
        return
    if _TimeMajorFeatureEncoder.supports(encoder):
        model.feature_extractor = _TimeMajorFeatureEncoder(encoder)
        return
    layers = getattr(encoder, "conv_layers", None)
    if layers is not None and len(layers) and _TimeMajorConv1d.supports(getattr(layers[0], "conv", None)):
        layers[0].conv = _TimeMajorConv1d(layers[0].conv)


def replacing(sources: Tuple[Tensor, ...], build: Callable[[], Tensor]) -> Callable[[], Tensor]:
    """``build`` for :func:`cached_derived` whose result replaces ``sources`` in inference: once it is built, the
    sources' pages are dropped from memory where they map the weights file (``utils.memory.release_mapped_pages``;
    MMS-300m's positional conv and front end: ~50 MB that nothing reads again; re-read from the file if needed)."""
    def build_then_release() -> Tensor:
        derived = build()
        for source in sources:
            release_mapped_pages(source)
        return derived

    return build_then_release


def _folded_conv_forward(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """The parametrized conv's forward with its weight computed once per parameter change (no autograd)."""
    if torch.is_grad_enabled():
        return type(conv).forward(conv, x)
    params = conv.parametrizations.weight
    sources = (params.original0, params.original1)
    weight = cached_derived(conv, "_folded_weight", sources, replacing(sources, lambda: conv.weight))
    return conv._conv_forward(x, weight, conv.bias)


def _fold_positional_weight_norm(model: nn.Module) -> None:
    """Compute the weight-normed positional convolution's ``g * v / ||v||`` once, not in every forward.

    transformers recomputes that norm over 8.4 M weights in every call (~25 ms for MMS-300m). The module and its
    state-dict keys stay as they are (a model saved afterwards reloads unchanged); only this instance's
    forward is rebound (a bound method, so a deep copy rebinds it to the copy).
    """
    conv = getattr(getattr(getattr(model, "encoder", None), "pos_conv_embed", None), "conv", None)
    if isinstance(conv, nn.Conv1d) and parametrize.is_parametrized(conv, "weight") and \
            hasattr(conv.parametrizations.weight, "original1"):
        conv.forward = types.MethodType(_folded_conv_forward, conv)


class _DropLoadReport(logging.Filter):
    """Drops transformers' per-key weight-loading report (the 5.x "LOAD REPORT" table, the 4.x "Some weights ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not ("LOAD REPORT" in message or "Some weights of" in message)


@contextlib.contextmanager
def _quiet_load_report():
    hf_logger = logging.getLogger("transformers.modeling_utils")
    report_filter = _DropLoadReport()
    hf_logger.addFilter(report_filter)
    try:
        yield
    finally:
        hf_logger.removeFilter(report_filter)


def _report_load_differences(model: nn.Module, loading_info: dict, layer: int, name: str) -> None:
    """Warn about checkpoint/model differences other than the ones truncation makes on purpose.

    Expected, so not reported: encoder layers >= ``layer`` (not built) and keys outside the base model, i.e.
    heads of other architectures (MMS-300m's pre-training quantizer and projections). Anything else - a missing
    (freshly initialised) weight, an unexpected key inside the built layers, a shape mismatch - is news.
    """
    own = {n for n, _ in model.named_children()} | {n for n, _ in model.named_parameters(recurse=False)}
    own |= {n for n, _ in model.named_buffers(recurse=False)}
    stable = bool(getattr(model.config, "do_stable_layer_norm", False))

    def discarded(key: str) -> bool:
        # _truncate drops these: layers past ``layer`` and, for pre-LN encoders, the final LayerNorm (so a
        # model saved after truncation, like the random test encoder, legitimately lacks it).
        dropped = re.match(r"encoder\.layers\.(\d+)\.", key)
        return bool(dropped and int(dropped.group(1)) >= layer) or (stable and key.startswith("encoder.layer_norm."))

    surprises = []
    for key in sorted(loading_info.get("unexpected_keys", ())):
        if discarded(key) or key.split(".")[0] not in own:
            continue
        surprises.append(f"unexpected {key}")
    surprises += [f"missing {key} (randomly initialised)" for key in sorted(loading_info.get("missing_keys", ()))
                  if not discarded(key)]
    surprises += [f"shape mismatch {item[0]}" for item in loading_info.get("mismatched_keys", ())]
    if surprises:
        logger.warning("SSL model %s: %s %s from the checkpoint beyond the %s kept: %s", name,
                       plural(len(surprises), "weight"), agree(len(surprises), "differs", "differ"),
                       plural(layer, "layer"), "; ".join(surprises))


class SSLFeatureExtractor(nn.Module):
    """Frozen SSL encoder returning one layer's features ``(B, C, frames)`` and frame lengths.

    Args:
        model: a ``transformers`` wav2vec2-family base model (``Wav2Vec2Model``, ``HubertModel``, ``WavLMModel``).
        layer: which ``hidden_states`` index to return; the encoder is truncated to it here.
        name: the hub id or directory it came from (for messages).
        full_layers: depth of the original model when ``model`` was already built with fewer layers.
    """

    def __init__(
        self, model: nn.Module, layer: int = DEFAULT_SSL_LAYER, name: str = "", full_layers: Optional[int] = None
    ) -> None:
        super().__init__()
        full = int(full_layers if full_layers is not None else model.config.num_hidden_layers)
        if not 0 <= layer <= full:
            raise ValueError(f"SSL layer {layer} out of range for {name or 'model'} with {full} layers")
        self.name = name
        self.layer = layer
        self.model = _truncate(model, layer).eval().requires_grad_(False)
        _fast_front_end(self.model)
        _fold_positional_weight_norm(self.model)
        use_onednn_linear(self.model)
        # Group-norm feature extractors (wav2vec2-base, HuBERT-base) normalise over time, so padding changes
        # every frame: such models are run one item at a time to keep batched == unbatched.
        self.supports_padding_mask = getattr(model.config, "feat_extract_norm", "layer") == "layer"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @classmethod
    def from_pretrained(
        cls,
        model_id: str = DEFAULT_SSL_MODEL,
        layer: int = DEFAULT_SSL_LAYER,
        cache_dir: Optional[str] = None,
        local_files_only: bool = False,
    ) -> "SSLFeatureExtractor":
        """Load a hub id or local directory (``AutoConfig``/``AutoModel``), building only ``layer`` layers."""
        from transformers import AutoConfig, AutoModel  # lazy: transformers is slow to import

        local = Path(model_id).expanduser()
        if local.is_dir():
            model_id = str(local)
        elif model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1:  # hub ids are "org/name"
            raise SSLModelError(f"SSL model directory not found: {model_id}")
        try:
            config = AutoConfig.from_pretrained(model_id, cache_dir=cache_dir, local_files_only=local_files_only)
            full = int(config.num_hidden_layers)
            if not 0 <= layer <= full:
                raise ValueError(f"SSL layer {layer} out of range for {model_id} with {full} layers")
            config.num_hidden_layers = layer  # later layers are neither built nor loaded
            with _quiet_load_report():  # it would list every dropped layer; _report_load_differences says what matters
                model, loading_info = AutoModel.from_pretrained(
                    model_id, config=config, cache_dir=cache_dir, local_files_only=local_files_only,
                    output_loading_info=True,
                )
            _report_load_differences(model, loading_info, layer, model_id)
        except OSError as err:
            from huggingface_hub import constants

            offline = local_files_only or constants.HF_HUB_OFFLINE
            why = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the hub is unreachable or the id is wrong"
            raise SSLModelError(
                f"cannot load SSL model {model_id!r}: weights are not in the local cache and {why} "
                f"(download it once with network access, or pass a local directory): {err.__class__.__name__}"
            ) from err
        if not hasattr(model, "encoder") or not hasattr(model.encoder, "layers"):
            raise SSLModelError(f"{model_id!r} ({type(model).__name__}) is not a wav2vec2/HuBERT/WavLM-style encoder")
        extractor = cls(model, layer, name=model_id, full_layers=full)
        logger.info("SSL features: %s hidden_states[%d] (%d-dim)", model_id, layer, extractor.dim)
        return extractor

    @contextlib.contextmanager
    def front_end_threads(self, threads: Optional[int]):
        """Run the conv front end on ``threads`` torch threads inside the block (None: no change).

        For a caller that runs CPU work beside this extractor for about as long as the front end takes (the
        VC pipeline's F0 with >= 2 threads): the front end leaves it a core, and the transformer layers after
        it get every thread again. Inside ``utils.threads.run_beside`` the side worker, once its own task is
        done, computes front-end pieces too (``map_with_side_worker``): measured with 2 threads on Zen 1,
        F0 + SSL of 5 s 1.74 -> 1.57 s. Only the time-major front end (layer-norm models) takes the hint.
        """
        if threads is None or not isinstance(getattr(self.model, "feature_extractor", None), _TimeMajorFeatureEncoder):
            yield
            return
        # per calling thread, like torch's thread count: a concurrent call in another thread is unaffected
        previous = getattr(_FRONT_END_THREADS, "count", None)
        _FRONT_END_THREADS.count = max(1, int(threads))
        try:
            yield
        finally:
            _FRONT_END_THREADS.count = previous

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Frames the convolutional front end produces for each input length."""
        return self.model._get_feat_extract_output_lengths(lengths).long()

    @torch.no_grad()
    def forward(self, wav: Tensor, lengths: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """``(B, T)`` (or ``(B, 1, T)``) waveform, already padded as wanted -> ``(B, C, F)``, ``(B,)`` lengths.

        Frames beyond each item's length are zero.
        """
        if wav.dim() == 3:
            wav = wav.squeeze(1)
        if lengths is None:
            lengths = torch.full((wav.size(0),), wav.size(-1), dtype=torch.long, device=wav.device)
        lengths = lengths.to(wav.device)
        frames = self.frame_lengths(lengths)
        wav = wav.to(next(self.model.parameters()).dtype)
        if bool((lengths == wav.size(-1)).all()):
            feats = self.model(wav).last_hidden_state  # (B, F, C)
        elif self.supports_padding_mask:
            mask = (torch.arange(wav.size(-1), device=wav.device).unsqueeze(0) < lengths.unsqueeze(1)).long()
            feats = self.model(wav, attention_mask=mask).last_hidden_state
        else:
            feats = wav.new_zeros(wav.size(0), int(frames.max()), self.dim)
            for b, length in enumerate(lengths.tolist()):
                item = self.model(wav[b : b + 1, :length]).last_hidden_state[0]
                feats[b, : item.size(0)] = item
        feats = feats.transpose(1, 2)  # (B, C, F)
        valid = torch.arange(feats.size(-1), device=feats.device).unsqueeze(0) < frames.unsqueeze(1)
        return feats * valid.unsqueeze(1).to(feats.dtype), frames


def ssl_front_end_beside(ssl: nn.Module, beside: bool):
    """Context for running F0 (one CPU thread) beside ``ssl``: its front end then uses one torch thread fewer,
    so the two do not fight over the cores (with 2 threads: 0.45 -> ~0.35 s for F0 + SSL of 5 s, measured in
    benchmarks/hierspeechpp_vc_speed.py). A no-op for other modules or when nothing runs beside."""
    if not beside or not isinstance(ssl, SSLFeatureExtractor):
        return contextlib.nullcontext()
    return ssl.front_end_threads(max(1, torch.get_num_threads() - 1))


def build_random_ssl(
    layer: int = 2,
    num_layers: int = 3,
    hidden_size: int = 32,
    num_heads: int = 2,
    conv_dim: int = 16,
    stable_layer_norm: bool = True,
    seed: int = 0,
) -> SSLFeatureExtractor:
    """A tiny RANDOMLY INITIALISED wav2vec 2.0 (same 320-sample frame rate as MMS) for tests and offline demos.

    Its features carry no linguistic information; a warning says so.  ``stable_layer_norm=True`` mirrors MMS
    (pre-LN layers, final encoder LayerNorm, layer-norm feature extractor).
    """
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    logger.warning(
        "using a RANDOMLY INITIALISED tiny wav2vec2 (%d layers, %d-dim) instead of pretrained SSL weights: "
        "features are meaningless, for tests/offline demos only",
        num_layers,
        hidden_size,
    )
    config = Wav2Vec2Config(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        conv_dim=(conv_dim,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        do_stable_layer_norm=stable_layer_norm,
        feat_extract_norm="layer" if stable_layer_norm else "group",
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    with seeded(seed):
        model = Wav2Vec2Model(config)
    return SSLFeatureExtractor(model, layer, name=f"random-wav2vec2-tiny(seed={seed})")
