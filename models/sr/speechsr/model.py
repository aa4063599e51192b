"""SpeechSR: a tiny AMP-block super-resolution network (HierSpeech++, arXiv 2311.12454, sec. 3.5).

Layout and names follow the released ``speechsr{24k,48k}/speechsr.py`` so that ``G_*.pth`` loads strictly:
``dec.conv_pre`` (weight-normed Conv1d 1->C, k7) on the raw 16 kHz waveform -> linear interpolation to
``int(N * factor)`` samples (factor 1.5 for 24 kHz, 3 for 48 kHz; the paper says nearest, the released
weights were trained with linear, issue #47) -> mean of the AMP blocks ``dec.resblocks.{j}`` ->
``dec.activation_post`` -> ``dec.conv_post`` (no bias) -> tanh.

The interpolation is ``F.interpolate`` itself: PyTorch computes source positions in float32 with one fused
multiply-add, and float64 positions move the released 48 kHz output by ~2e-3 (fixtures README, pitfall 8).

:meth:`SpeechSR.optimize_for_inference` (≥3x faster on CPU, same output up to float rounding ~1e-6):

* folds weight norm (the official code recomputes g·v/‖v‖ for 19 layers on every call);
* switches every anti-aliased SnakeBeta to the polyphase block-Toeplitz path of ``modules/alias_free.py``
  (no multiplications by stuffed zeros, GEMMs instead of slow depthwise kernels, fewer memory passes);
* runs the network in time chunks: everything after the interpolation is local (receptive radius
  :func:`receptive_radius`, 98 samples for the released models), so windows of ``chunk`` samples plus a
  halo ≥ the radius on each side give exactly the one-shot result while the working set (a few MB instead
  of ~60 MB tensors at 48 kHz) stays in cache; each window's ``conv_pre`` and interpolation run on the
  input samples it reads. At the true signal ends a window starts/stops exactly where the signal does, so
  the replicate/zero padding is the same as in the one-shot computation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.sr.speechsr.config import SpeechSRModelConfig
from modules.alias_free import Activation1d, set_polyphase
from modules.interpolation import input_span, interpolate_window, torch_fuses_positions
from modules.vocoders.amp import (activation_then_conv, average_blocks, build_amp_blocks, make_snake, runs_time_major,
                                  set_channels_last_inference, set_vocoder_precision)
from modules.weight_norm import fold_weight_norm, weight_norm
from utils.memory import keep_freed_memory
from utils.registry import register
from utils.threads import torch_threads

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
PRETRAINED = {
    24000: ("speechsr24k_G_340000.pth", "speechsr24k_config.json"),
    48000: ("speechsr48k_G_100000.pth", "speechsr48k_config.json"),
}
INPUT_RATE = 16000
# Output samples per window of the chunked inference path. Measured on one Zen 5 core (12.5 s of speech, 48 kHz):
# 14336 took 1.07 s where 8192 took 1.13-1.15 s: a halo of 2 x 112 samples is paid less often and the ~37
# per-window calls fewer times; widths of a power of two (8192, 16384) were the slow ones, 12k-24k all fast.
DEFAULT_CHUNK_SAMPLES = 14336


def upsample_factor_for(target_rate: int) -> float:
    """Interpolation factor from 16 kHz: 1.5 (24 kHz) or 3 (48 kHz)."""
    if target_rate not in (24000, 48000):
        raise ValueError(f"SpeechSR supports target rates 24000 and 48000, got {target_rate}")
    return target_rate / INPUT_RATE


def interpolated_length(n: int, factor: float) -> int:
    """Output length of the official code: ``int(N * factor)``."""
    return int(n * factor)


class SpeechSRGenerator(nn.Module):
    """Waveform (B, 1, N) at 16 kHz -> (B, 1, int(N * factor)) in [-1, 1].

    Args:
        upsample_factor: 1.5 or 3.0 (any positive factor works, released weights use these).
        channels: ``upsample_initial_channel`` of the config (32 released).
        resblock_kernel_sizes, resblock_dilation_sizes: the averaged AMP blocks.
    """

    def __init__(self, upsample_factor: float, channels: int = 32,
                 resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))):
        super().__init__()
        if upsample_factor <= 0:
            raise ValueError(f"SpeechSRGenerator: upsample_factor must be positive, got {upsample_factor}")
        self.upsample_factor = float(upsample_factor)
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(1, channels, 7, padding=3))
        self.resblocks = build_amp_blocks([channels], resblock_kernel_sizes, resblock_dilation_sizes, "snakebeta")
        self.activation_post = Activation1d(make_snake("snakebeta", channels))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3, bias=False)
        # output samples per window of the chunked inference path; 0 = one shot (training, reference)
        self.chunk_size = 0
        self.chunk_threads = 1  # CPU intra-op threads inside the chunked path (0 = leave the caller's setting)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"SpeechSR expects a (B, 1, N) waveform, got shape {tuple(x.shape)}")
        total = interpolated_length(x.shape[-1], self.upsample_factor)
        if self.chunk_size > 0 and not torch.is_grad_enabled():
            halo = -(-receptive_radius(self) // 16) * 16
            if total > self.chunk_size + 2 * halo and torch_fuses_positions() is not None:
                return self._chunked(x, total, self.chunk_size, halo)
        return self._post_interpolation(F.interpolate(self.conv_pre(x), size=total, mode="linear"))

    def _post_interpolation(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last inference: the blocks' output stays time-major for the fused final activation and conv
        x = average_blocks(x, self.resblocks, 0, self.num_kernels, time_major_out=runs_time_major(self.resblocks, x))
        return torch.tanh(activation_then_conv(self.activation_post, self.conv_post, x))

    def _chunked(self, x: torch.Tensor, total: int, chunk: int, halo: int) -> torch.Tensor:
        """The whole network on windows of ``chunk`` output samples plus ``halo`` (see module docstring).

        Each window's ``conv_pre`` and interpolation run on just the input samples it reads
        (``modules/interpolation.py`` reproduces ``F.interpolate``'s positions exactly), so memory stays a few
        window-sized tensors whatever the length: the whole 48 kHz interpolation of 32 channels was ~80 MB
        for 12.5 s of speech (~370 MB for a minute), and F.interpolate's pass over it ~4 % of the time.

        Runs on ``chunk_threads`` intra-op threads (default 1, 0 = the caller's setting): the per-window ops
        are small (~0.1-2 ms), and with more threads every op pays an OpenMP barrier; on the 2-core test
        machine 2 threads made this path 10x slower (spinning) and a Python thread pool over windows 2x
        slower than one thread, while one thread was already >= 4x faster than the reference at 48 kHz.
        """
        n_in, reach = x.shape[-1], (self.conv_pre.kernel_size[0] - 1) // 2
        out = x.new_empty(x.shape[0], 1, total)
        with torch_threads(self.chunk_threads if self.chunk_threads > 0 and x.device.type == "cpu" else None):
            for start in range(0, total, chunk):
                stop = min(start + chunk, total)
                lo, hi = max(0, start - halo), min(total, stop + halo)
                a, b = input_span(n_in, total, lo, hi)
                # conv_pre on [a, b) plus its reach on each side: its own zero padding is then right at the
                # signal's ends and cut away inside it
                s0, s1 = max(a - reach, 0), min(b + reach, n_in)
                h = self.conv_pre(x[..., s0:s1])[..., a - s0:b - s0]
                part = interpolate_window(h, total, lo, hi, offset=a, n_in=n_in)
                out[..., start:stop] = self._post_interpolation(part)[..., start - lo:stop - lo]
        return out


def receptive_radius(gen: SpeechSRGenerator) -> int:
    """Samples of context on each side that one output of the post-interpolation network depends on."""
    act = 5  # Activation1d: 3 input samples for the 2x interpolation, then 6 samples of the 2x signal
    radius = 0
    for block in gen.resblocks:
        r = 0
        for conv1, conv2 in zip(block.convs1, block.convs2):
            r += act + conv1.dilation[0] * (conv1.kernel_size[0] - 1) // 2
            r += act + conv2.dilation[0] * (conv2.kernel_size[0] - 1) // 2
        radius = max(radius, r)
    return radius + act + (gen.conv_post.kernel_size[0] - 1) // 2


@register("model", "speechsr")
class SpeechSR(BuiltFromConfig, nn.Module):
    """Official ``SynthesizerTrn`` wrapper: the whole model is ``dec`` (keys ``dec.*``); built by
    :func:`models.base.building.build_model` / :meth:`from_config` from a :class:`SpeechSRModelConfig`
    (``target_rate`` 24000 or 48000; an official ``config.json`` goes through :func:`official_model_kwargs`)."""

    config_class = SpeechSRModelConfig

    def __init__(self, *, target_rate: int, upsample_initial_channel: int, resblock_kernel_sizes: List[int],
                 resblock_dilation_sizes: List[List[int]]) -> None:
        super().__init__()
        self.config = config_of_arguments(SpeechSRModelConfig, locals())
        self.target_rate = int(target_rate)
        self.dec = SpeechSRGenerator(upsample_factor_for(self.target_rate), upsample_initial_channel,
                                     resblock_kernel_sizes, resblock_dilation_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, N) 16 kHz -> (B, 1, int(N * factor)) at ``target_rate``."""
        return self.dec(x)

    infer = forward

    def optimize_for_inference(self, chunk_size: int = DEFAULT_CHUNK_SAMPLES,
                               vocoder_precision: Optional[str] = None) -> "SpeechSR":
        """Fold weight norm, use polyphase activations, channels-last fused AMP blocks on CPU and chunked inference
        (no training afterwards). ``vocoder_precision="bfloat16"`` runs the AMP blocks' convolutions in bfloat16
        (opt-in; :func:`modules.vocoders.amp.set_vocoder_precision`); None keeps the model's (float32 unless set)."""
        if chunk_size < 0:
            raise ValueError(f"chunk_size must be >= 0, got {chunk_size}")
        self.eval()
        fold_weight_norm(self)
        set_polyphase(self, True)
        set_channels_last_inference(self, True)
        if vocoder_precision is not None:
            set_vocoder_precision(self, vocoder_precision)
        self.dec.chunk_size = chunk_size
        keep_freed_memory()
        return self

    @classmethod
    def from_pretrained(cls, target_rate: int = 48000, checkpoint: Optional[str | Path] = None,
                        config: Optional[str | Path] = None) -> "SpeechSR":
        """Build and strictly load a released (or own) checkpoint.

        ``checkpoint`` may be an official ``G_*.pth`` (``{'model': state_dict, ...}``) or a plain state_dict;
        by default the bundled MIT-licensed release for ``target_rate`` is used.
        """
        if checkpoint is None:
            if target_rate not in PRETRAINED:
                raise ValueError(f"no bundled SpeechSR checkpoint for {target_rate} Hz; choose 24000 or 48000")
            ckpt_name, cfg_name = PRETRAINED[target_rate]
            checkpoint = PRETRAINED_DIR / ckpt_name
            config = PRETRAINED_DIR / cfg_name if config is None else config
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"SpeechSR checkpoint not found: {checkpoint}")
        model_cfg: Dict[str, Any] = {}
        if config is not None:
            with open(config, encoding="utf-8") as fh:
                full = json.load(fh)
            model_cfg = official_model_kwargs(full.get("model", {}))
            rate = int(full.get("data", {}).get("sampling_rate", target_rate))  # official name
            if rate != target_rate:
                raise ValueError(f"config {config} is for {rate} Hz but target_rate is {target_rate}")
        model = cls.from_config({"target_rate": target_rate, **model_cfg})
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        model.load_state_dict(state, strict=True)
        return model.eval()


# Keys of the official ``model`` block that the official SpeechSR never reads (its generator hard-codes them).
OFFICIAL_UNREAD_MODEL_KEYS = ("resblock", "upsample_rates", "upsample_kernel_sizes", "use_spectral_norm")


def official_model_kwargs(model_block: Mapping[str, Any]) -> Dict[str, Any]:
    """Constructor arguments from an official ``config.json`` ``model`` block: its unread keys accepted, dropped."""
    return {k: v for k, v in model_block.items() if k not in OFFICIAL_UNREAD_MODEL_KEYS}


