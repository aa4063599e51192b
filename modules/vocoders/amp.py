"""Anti-aliased multi-periodicity (AMP) blocks and a BigVGAN-style waveform generator.

``AMPBlock`` is the residual block of BigVGAN ("AMPBlock1"), used unchanged by the HierSpeech++ generator,
its source network and posterior encoder, and SpeechSR ("AMPBlock0"): three
[anti-aliased SnakeBeta -> dilated conv -> anti-aliased SnakeBeta -> conv] units with a residual around each.
Checkpoint names: ``convs1.{i}``, ``convs2.{i}`` (legacy weight norm ``weight_g``/``weight_v``) and
``activations.{0..5}`` (even index before ``convs1``, odd before ``convs2``).

``AMPGenerator`` is a standalone mel (or any feature) vocoder in the BigVGAN mould: ``conv_pre`` ->
[weight-normed transposed conv ``ups.{i}`` -> average of the stage's AMP blocks] per stage ->
``activation_post`` -> ``conv_post`` -> tanh, with the resblocks in one flat list indexed
``stage * n_kernels + kernel`` as in every official checkpoint.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from modules.activations import Snake, SnakeBeta
from modules.alias_free import Activation1d
from modules.commons import cached_derived
from modules.fft_conv import fft_block_for, fft_conv_time_major, fft_convolutions_wanted
from modules.onednn_linear import time_major_kernel
from modules.weight_norm import fold_weight_norm, has_weight_norm, weight_norm
from utils.devices import cpu_bf16_instructions
from utils.threads import shared_pool, torch_threads


def make_snake(kind: str, channels: int) -> nn.Module:
    """Log-scale ``"snake"`` or ``"snakebeta"`` activation for ``channels`` channels."""
    if kind == "snakebeta":
        return SnakeBeta(channels, alpha_logscale=True)
    if kind == "snake":
        return Snake(channels, alpha_logscale=True)
    raise ValueError(f"unknown AMP activation {kind!r}; expected 'snake' or 'snakebeta'")


def init_conv_weights(module: nn.Module, std: float = 0.01) -> None:
    """HiFi-GAN/BigVGAN init: N(0, std) on every (transposed) conv weight ``v`` or ``weight``."""
    for sub in module.modules():
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
            weight = sub.weight_v if hasattr(sub, "weight_v") else sub.weight
            weight.data.normal_(0.0, std)


class AMPBlock(nn.Module):
    """Three anti-aliased Snake residual units; (B, C, T) -> (B, C, T).

    Args:
        channels: C.
        kernel_size: kernel of every conv (odd; "same" padding).
        dilations: dilation of ``convs1[i]``; ``convs2[i]`` are undilated.
        activation: ``"snakebeta"`` (HierSpeech++, SpeechSR) or ``"snake"``.
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilations: Sequence[int] = (1, 3, 5),
                 activation: str = "snakebeta"):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"AMPBlock: kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size * d - d) // 2))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2))
            for _ in dilations)
        self.activations = nn.ModuleList(
            Activation1d(make_snake(activation, channels)) for _ in range(2 * len(dilations)))
        init_conv_weights(self)
        self.channels_last = False  # see set_channels_last_inference
        self.conv_dtype: Optional[torch.dtype] = None  # see set_vocoder_precision (None: float32)
        self.fft_convolutions = False  # see set_channels_last_inference

    def runs_channels_last(self, x: torch.Tensor, x_mask: Optional[torch.Tensor] = None) -> bool:
        """Whether this call can take :meth:`forward_channels_last` (CPU float32 inference, no mask)."""
        return (self.channels_last and x_mask is None and not torch.is_grad_enabled()
                and x.device.type == "cpu" and x.dtype == torch.float32)

    def forward(self, x: torch.Tensor, x_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, C, T); x_mask: optional (B, 1, T) applied before each conv."""
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2)):
            xt = self.activations[2 * i](x)
            if x_mask is not None:
                xt = xt * x_mask
            xt = conv1(xt)
            xt = self.activations[2 * i + 1](xt)
            if x_mask is not None:
                xt = xt * x_mask
            xt = conv2(xt)
            x = xt + x
        if x_mask is not None:
            x = x * x_mask
        return x

    def receptive_radius(self) -> int:
        """Input samples on each side that one output depends on: the convs' reach plus 6 per anti-aliased
        activation (its 12-tap filters at the doubled rate; modules/fused_snake.py)."""
        convs = list(self.convs1) + list(self.convs2)
        return sum((c.kernel_size[0] - 1) // 2 * c.dilation[0] for c in convs) + 6 * len(self.activations)

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on (B, C, 1, T) channels-last tensors (inference only; see ``set_channels_last_inference``).

        oneDNN runs these dilated convolutions at a steady ~full speed in this layout, and the fused
        anti-aliased SnakeBeta kernel reads and writes it directly. With ``conv_dtype`` bfloat16 the convolutions
        run in it (inputs, weights and outputs rounded to bfloat16, float32 sums inside oneDNN) and everything
        else, the activations and the residual sums, stays float32.
        """
        low = self.conv_dtype
        act_dtype = torch.float32 if low is None else low  # the fused activation writes the convs' dtype itself
        fft = self.fft_convolutions and low is None
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2)):
            xt = self.activations[2 * i].forward_channels_last(x, scratch=True, out_dtype=act_dtype)
            xt = _conv_channels_last(conv1, xt, low, fft)
            xt = self.activations[2 * i + 1].forward_channels_last(xt, scratch=True, out_dtype=act_dtype)
            xt = _conv_channels_last(conv2, xt, low, fft)
            if low is None:
                x = xt.add_(x)
            else:  # float32 sum of a bfloat16 conv output, one pass; the block's input (shared) is never written
                x = torch.add(x, xt) if i == 0 else x.add_(xt)
        return x


def _conv_channels_last(conv: nn.Conv1d, x: torch.Tensor, dtype: Optional[torch.dtype] = None,
                        fft: bool = False) -> torch.Tensor:
    """``conv`` (stride 1, folded weights) applied to a (B, C, 1, T) channels-last tensor; with ``dtype`` the
    input is cast to it and the convolution runs in it (weights cast once, cached), returning that dtype.
    With ``fft`` a batch-1 float32 call whose shape is faster in the frequency domain
    (:func:`modules.fft_conv.fft_block_for`) runs as an overlap-save FFT convolution."""
    if fft and dtype is None and x.size(0) == 1 and not torch.jit.is_tracing():
        block = fft_block_for(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.dilation[0],
                              x.size(-1))
        if block is not None:
            time_major = x.permute(0, 2, 3, 1).reshape(x.size(-1), x.size(1))  # a view of channels-last memory
            y = fft_conv_time_major(time_major, conv.weight, conv.bias, conv.dilation[0], conv.padding[0], block)
            return y.view(1, 1, y.size(0), y.size(1)).permute(0, 3, 1, 2)  # (1, C_out, 1, T') channels-last
    sources = (conv.weight,) if conv.bias is None else (conv.weight, conv.bias)
    # cached: this runs ~2,400 times per text -> 48 kHz synthesis, and re-deriving the views cost ~5 us a call
    weight, bias = cached_derived(conv, "_channels_last_weights", sources, extra=(dtype,),
                                  build=lambda: _channels_last_weights(conv, dtype))
    if dtype is not None:
        x = x.to(dtype)  # a no-op when the fused activation already wrote it in dtype
    return F.conv2d(x, weight, bias, padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]))


def _channels_last_weights(conv: nn.Conv1d, dtype: Optional[torch.dtype]) -> tuple:
    """(weight (C_out, C_in, 1, k) channels-last, bias), cast to ``dtype`` when given."""
    time_major_kernel(conv)  # the weight re-laid out in place once: (C_out, C_in, 1, k) channels-last is then a view
    weight, bias = conv.weight.detach().unsqueeze(2), None if conv.bias is None else conv.bias.detach()
    if dtype is not None and dtype != weight.dtype:
        weight, bias = weight.to(dtype), None if bias is None else bias.to(dtype)
    return weight, bias


def conv_time_major(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` (stride 1, no weight norm) for a (B, C, T) ``x`` whose memory is time-major (B, T, C), as
    the channels-last 2-D convolution it is; the result is (B, C_out, T') with time-major memory too.

    oneDNN reorders a (B, C, T) input to its blocked layout first; for the one-channel output conv that ends
    a vocoder this form is 2-6x faster (same values)."""
    return _conv_channels_last(conv, x.unsqueeze(2)).squeeze(2)


def activation_then_conv(activation: Activation1d, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(activation(x))``, the end of an AMP vocoder. For CPU inference on ``x`` in time-major memory
    (what ``average_blocks(..., time_major_out=True)`` returns) both run channels-last: the fused activation,
    then :func:`conv_time_major`; the result is (B, C_out, T) in time-major memory."""
    time_major = x.dim() == 3 and x.size(1) > 1 and x.stride(1) == 1
    if (time_major and activation.fused_supported() and not torch.is_grad_enabled() and x.device.type == "cpu"
            and x.dtype == torch.float32 and not has_weight_norm(conv) and conv.stride == (1,) and conv.groups == 1):
        return conv_time_major(conv, activation.forward_channels_last(x.unsqueeze(2)).squeeze(2))
    return conv(activation(x))


def transposed_conv_time_major(up: nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """``up(x)``, (B, C_in, T) -> (B, C_out, T'), computed as a channels-last 2-D transposed convolution
    (inference); the result's memory is time-major, the layout :func:`average_blocks` runs in.

    oneDNN's transposed convolution in (B, C, T) layout ran 1.2-7x slower on the HierSpeech++ up-sampling
    shapes than in channels-last (same values: tested). It runs on input windows of a few fixed widths
    (:func:`_transposed_conv_pieces`): oneDNN builds a kernel for every new input width, and for these strided
    transposed convolutions that took 2-23 ms each, ~64 ms per new utterance length in the HierSpeech++
    generator against ~18 ms of arithmetic.
    """
    if not has_weight_norm(up):
        time_major_kernel(up)  # re-laid out in place once (as the AMP convs are): then a channels-last view
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    return _transposed_conv_pieces(up, x4).squeeze(2)


# Output bytes per window of the piecewise transposed convolution (a power-of-two number of input frames).
TRANSPOSED_PIECE_BYTES = 2 << 20


def _transposed_conv_pieces(up: nn.ConvTranspose1d, x4: torch.Tensor) -> torch.Tensor:
    """``up`` on a (B, C_in, 1, T) channels-last input, window by window: (B, C_out, 1, T') channels-last.

    A transposed convolution is a sum of kernel copies placed at stride ``s``: output ``n`` of the unpadded
    ("full") convolution only gets inputs ``m`` with ``0 <= n - s*m < K``, and inputs that are zero add
    nothing. So output piece ``[n0, n0 + s*P)`` is the full convolution of the input frames around
    ``[n0/s, n0/s + P)``, with zeros where the signal has none, shifted by the layer's padding: every window
    has ``P + halo`` frames, ``P`` one of at most 16 widths whatever ``T`` is (the largest, for
    ``TRANSPOSED_PIECE_BYTES`` of output, or a multiple of an eighth of it), and the result is the one-pass
    result up to float rounding.
    """
    stride, kernel, padding = up.stride[0], up.kernel_size[0], up.padding[0]
    dilation, output_padding = up.dilation[0], up.output_padding[0]
    batch, _, _, length = x4.shape
    span = dilation * (kernel - 1) + 1  # taps of the full kernel, from the first to the last
    out_len = (length - 1) * stride - 2 * padding + span + output_padding
    channels_out = up.out_channels
    per_frame = x4.element_size() * channels_out * stride * max(batch, 1)
    largest = 1 << max(4, (TRANSPOSED_PIECE_BYTES // per_frame).bit_length() - 1)  # a power of two >= 16
    granule = max(16, largest // 8)
    # windows of the largest width; a signal of up to two of them is one window rounded up to an eighth of
    # that width (at most 16 widths per layer whatever the length; oneDNN's speed varies with the width, and
    # these powers of two and their eighths were the fast ones on the HierSpeech++ shapes)
    piece = largest if length > 2 * largest else -(-length // granule) * granule
    # output n is full-output index J = n + padding, which reads inputs m in ((J - span) / s, J / s]
    first = -((span - 1 - padding) // stride)  # = floor((padding - span) / s) + 1: piece 0's first input frame
    # Each window is convolved WITH the layer's padding (oneDNN's kernel for these strided shapes is up to 2.5x
    # slower without it), so window output j is output n = j + s * (window start) of the whole signal.
    covers_inputs = piece + (padding - 1) // stride - first + 1
    covers_outputs = piece + -(-(2 * padding - span - stride * first) // stride) + 1
    window = max(covers_inputs, covers_outputs)
    weight = up.weight.detach().unsqueeze(2)
    out = torch.empty(batch, channels_out, 1, out_len, dtype=x4.dtype, device=x4.device,
                      memory_format=torch.channels_last)
    n_pieces = -(-out_len // (stride * piece))
    pad_left, pad_right = -first, max(0, (n_pieces - 1) * piece + first + window - length)
    source = F.pad(x4, (pad_left, pad_right)).contiguous(memory_format=torch.channels_last)
    shift = -stride * first
    for i in range(n_pieces):
        start = i * piece  # window frames [start + first, start + first + window) -> source[start:start + window]
        part = F.conv_transpose2d(source[..., start:start + window], weight, up.bias, stride=(1, stride),
                                  padding=(0, padding), dilation=(1, dilation))
        n0, n1 = i * piece * stride, min((i + 1) * piece * stride, out_len)
        out[..., n0:n1] = part[..., shift:shift + n1 - n0]
    return out


def set_channels_last_inference(model: nn.Module, enabled: bool = True, fft: str = "auto") -> int:
    """Run ``model``'s AMP blocks in channels-last memory with fused anti-aliased SnakeBeta on CPU.

    Inference only, after weight norm is folded: blocks whose convs still carry weight norm, whose
    activations are not SnakeBeta in the released geometry, or without numba keep the standard path.
    Applies to CPU float32 calls without autograd; anything else runs :meth:`AMPBlock.forward` as before.
    ``fft`` (:func:`modules.fft_conv.fft_convolutions_wanted`) lets the switched blocks run their wide-kernel
    convolutions as FFT convolutions where that is faster (outputs within ~1e-5 of the direct ones).
    Returns the number of blocks switched.
    """
    use_fft = fft_convolutions_wanted(fft)
    count = 0
    for module in model.modules():
        if isinstance(module, AMPBlock):
            convs = list(module.convs1) + list(module.convs2)
            ok = (all(a.fused_supported() for a in module.activations)
                  and not any(has_weight_norm(conv) for conv in convs))
            module.channels_last = enabled and ok
            module.fft_convolutions = module.channels_last and use_fft
            if module.channels_last:  # lay the weights out now, so the cached views made at the first call stay valid
                for conv in convs:
                    time_major_kernel(conv)
            count += int(module.channels_last)
    return count


VOCODER_PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


class PrecisionError(ValueError):
    """A vocoder precision that is unknown or that this machine cannot run fast."""


def set_vocoder_precision(model: nn.Module, precision: str = "float32") -> int:
    """Precision of the convolutions in ``model``'s channels-last AMP blocks (CPU inference): ``"float32"``
    (default, the reference arithmetic) or ``"bfloat16"`` (1.7-2x faster convolutions on CPUs with native
    bfloat16 instructions; SpeechSR's output on real speech then lies 47-56 dB from float32's, samples moving
    by up to ~1e-2: benchmarks/README.md).

    Only blocks switched by :func:`set_channels_last_inference` are affected (other devices, dtypes and
    training keep float32). Returns the number of blocks that run in ``precision``. Raises
    :class:`PrecisionError` for an unknown precision, or for bfloat16 on a CPU model when the CPU has no native
    bfloat16 instructions (oneDNN would emulate them, slower than float32); nothing is switched then.
    """
    if precision not in VOCODER_PRECISIONS:
        raise PrecisionError(f"vocoder_precision {precision!r}: choose one of {', '.join(VOCODER_PRECISIONS)}")
    dtype = VOCODER_PRECISIONS[precision]
    blocks = [m for m in model.modules() if isinstance(m, AMPBlock)]
    on_cpu = any(p.device.type == "cpu" for b in blocks for p in b.parameters())
    if dtype is not None and on_cpu and not cpu_bf16_instructions():
        raise PrecisionError(f"vocoder_precision {precision}: this CPU has no native bfloat16 instructions "
                             "(avx512_bf16 or amx_bf16), so bfloat16 convolutions would be slower than float32; "
                             "use float32")
    for block in blocks:
        block.conv_dtype = dtype
    return sum(int(block.channels_last) for block in blocks) if dtype is not None else len(blocks)


def vocoder_precision_of(model: nn.Module) -> str:
    """The precision :func:`set_vocoder_precision` last gave ``model``'s AMP blocks (``"float32"`` if none)."""
    dtypes = {block.conv_dtype for block in model.modules() if isinstance(block, AMPBlock)}
    return next((name for name, dtype in VOCODER_PRECISIONS.items() if dtype in dtypes and dtype is not None),
                "float32")


def build_amp_blocks(channels: Sequence[int], kernel_sizes: Sequence[int],
                     dilations: Sequence[Sequence[int]], activation: str = "snakebeta") -> nn.ModuleList:
    """Flat ``ModuleList`` of AMP blocks: for each stage channel count, one block per kernel size."""
    if len(kernel_sizes) != len(dilations):
        raise ValueError(f"resblock kernel sizes {list(kernel_sizes)} and dilations {list(dilations)} differ in length")
    return nn.ModuleList(AMPBlock(ch, k, d, activation) for ch in channels for k, d in zip(kernel_sizes, dilations))


PIECE_BYTES = 2 << 20  # bytes of one (C, piece) activation in the piecewise AMP stage


def _sum_blocks(blocks: Sequence["AMPBlock"], x4: torch.Tensor) -> torch.Tensor:
    out = blocks[0].forward_channels_last(x4)
    for block in blocks[1:]:
        out = out.add_(block.forward_channels_last(x4))
    return out


def _run_pieces(blocks: Sequence["AMPBlock"], x4: torch.Tensor, out: torch.Tensor, bounds: Sequence[int],
                halo: int, one_thread: bool) -> None:
    """Pieces ``[bounds[i], bounds[i + 1])`` of the stage into ``out``, each on its samples plus ``halo``."""
    length = x4.size(-1)
    with torch_threads(1 if one_thread else None):
        for start, stop in zip(bounds[:-1], bounds[1:]):
            lo, hi = max(start - halo, 0), min(stop + halo, length)
            part = x4[..., lo:hi].contiguous(memory_format=torch.channels_last)  # a view when B == 1
            out[..., start:stop] = _sum_blocks(blocks, part)[..., start - lo:stop - lo]


def _sum_in_pieces(blocks: Sequence["AMPBlock"], x4: torch.Tensor) -> torch.Tensor:
    """``sum(block(x4))`` for a (B, C, 1, T) channels-last ``x4``, computed in time pieces of ~PIECE_BYTES.

    Each piece runs the blocks on its samples plus ``halo`` on each side, the blocks' receptive radius, so
    what it keeps never sees the piece's own edges: the same values as one pass (convolution outputs do not
    depend on the width they are computed over). The stage's temporaries are then a few piece-sized
    tensors instead of several whole-signal ones (5 MB each per 5 s at 16 kHz): measured on the HierSpeech++
    generator, the same speed and ~35 MB less memory kept by the allocator after a 5 s conversion.

    With N >= 2 torch threads the pieces are dealt to N streams (this thread and N - 1 pool threads) that each
    run one torch thread: oneDNN's convolutions on these shapes gain little from a second thread (64 channels,
    kernel 11: 7.9 ms on one, 7.7 ms on two), and the fused activations run on one, while two independent
    streams each keep a core busy. Every piece is computed exactly as on one thread.
    """
    length = x4.size(-1)
    halo = max(block.receptive_radius() for block in blocks)
    streams = torch.get_num_threads() if x4.device.type == "cpu" else 1
    if length < 16 * halo * streams:  # pieces much longer than their halo, or no split at all
        streams = 1
    if streams == 1:
        # pieces of one fixed width (the last one shorter): oneDNN builds its convolution kernels per input
        # width, so every piece but the last reuses the kernels of earlier calls whatever their length (~25 ms
        # less per new utterance length in the HierSpeech++ generator)
        frames = max(16 * halo, PIECE_BYTES // max(1, x4[..., :1].numel() * x4.element_size()) // 256 * 256)
        bounds = list(range(0, length, frames)) + [length]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < frames // 2:
            # a short remainder joins the piece before it: one seam (2 * halo samples of work) less, and still
            # one new kernel width per stage (HierSpeech++ 12.5 s: -2 % of the AMP stages' samples)
            del bounds[-2]
    else:  # equal pieces, a multiple of the streams: they finish together
        n_pieces = -(-max(1, x4.numel() * x4.element_size() // PIECE_BYTES) // streams) * streams
        bounds = [i * length // n_pieces for i in range(n_pieces + 1)]
    n_pieces = len(bounds) - 1
    if n_pieces <= 1:
        return _sum_blocks(blocks, x4)
    out = torch.empty_like(x4, memory_format=torch.channels_last)
    per_stream = n_pieces // streams
    groups = [bounds[g * per_stream:(g + 1) * per_stream + 1] for g in range(streams)]
    inference = torch.is_inference_mode_enabled()  # autograd modes are per thread: the streams take the caller's

    def stream(group: Sequence[int]) -> None:
        with torch.inference_mode(inference), torch.no_grad():
            _run_pieces(blocks, x4, out, group, halo, True)

    pending = [shared_pool(streams - 1).submit(stream, group) for group in groups[1:]]
    try:
        _run_pieces(blocks, x4, out, groups[0], halo, streams > 1)
    finally:
        for job in pending:
            job.result()
    return out


def runs_time_major(blocks: Sequence[nn.Module], x: torch.Tensor) -> bool:
    """Whether :func:`average_blocks` runs ``blocks`` channels-last for an input like ``x``."""
    return all(isinstance(block, AMPBlock) and block.runs_channels_last(x) for block in blocks)


def average_blocks(x: torch.Tensor, blocks: nn.ModuleList, stage: int, n_kernels: int,
                   time_major_out: bool = False) -> torch.Tensor:
    """Mean of ``blocks[stage * n_kernels + j](x)`` over j (multi-receptive-field fusion).

    When the blocks run channels-last, ``x`` in time-major memory is taken without a copy, and with
    ``time_major_out`` the (B, C, T) result is left in time-major memory too (for a caller whose next step
    runs channels-last), instead of being copied back to (B, C, T) memory.
    """
    stage_blocks = [blocks[stage * n_kernels + j] for j in range(n_kernels)]
    if runs_time_major(stage_blocks, x):
        # one layout change in and one out per stage; every conv and activation between runs channels-last
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        out = _sum_in_pieces(stage_blocks, x4).div_(n_kernels).squeeze(2)
        return out if time_major_out else out.contiguous()
    out = blocks[stage * n_kernels](x)
    for j in range(1, n_kernels):
        out = out + blocks[stage * n_kernels + j](x)
    return out / n_kernels


class AMPGenerator(nn.Module):
    """BigVGAN-style vocoder: features (B, in_channels, T) -> waveform (B, 1, T * prod(upsample_rates)).

    Args:
        in_channels: feature channels (e.g. number of mel bins).
        upsample_initial_channel: channels after ``conv_pre``; halved by every upsampling stage.
        upsample_rates, upsample_kernel_sizes: per-stage transposed-conv stride and kernel.
        resblock_kernel_sizes, resblock_dilation_sizes: AMP blocks averaged at every stage.
        activation: ``"snakebeta"`` or ``"snake"``.
        gin_channels: if > 0, a global condition (B, gin, 1) is added after ``conv_pre`` through ``cond``.
        post_bias: bias of ``conv_post`` (HierSpeech++ has none).
    """

    def __init__(self, in_channels: int, upsample_initial_channel: int = 512,
                 upsample_rates: Sequence[int] = (8, 8, 2, 2), upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
                 resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                 activation: str = "snakebeta", gin_channels: int = 0, post_bias: bool = False):
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError(f"upsample_rates {list(upsample_rates)} and upsample_kernel_sizes "
                             f"{list(upsample_kernel_sizes)} differ in length")
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            if (k - u) % 2 != 0 or k < u:
                raise ValueError(f"upsample kernel {k} with rate {u}: need k >= u and (k - u) even for exact lengths")
        if upsample_initial_channel % (2 ** len(upsample_rates)) != 0:
            raise ValueError(f"upsample_initial_channel {upsample_initial_channel} must be divisible by "
                             f"2**{len(upsample_rates)}")
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.hop_length = 1
        for u in upsample_rates:
            self.hop_length *= u
        self.conv_pre = weight_norm(nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3))
        self.ups = nn.ModuleList(
            weight_norm(nn.ConvTranspose1d(upsample_initial_channel // 2 ** i, upsample_initial_channel // 2 ** (i + 1),
                                           k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)))
        stage_channels = [upsample_initial_channel // 2 ** (i + 1) for i in range(self.num_upsamples)]
        self.resblocks = build_amp_blocks(stage_channels, resblock_kernel_sizes, resblock_dilation_sizes, activation)
        self.activation_post = Activation1d(make_snake(activation, stage_channels[-1]))
        self.conv_post = nn.Conv1d(stage_channels[-1], 1, 7, padding=3, bias=post_bias)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels > 0 else None
        init_conv_weights(self.ups)

    def forward(self, x: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.conv_pre(x)
        if g is not None:
            if self.cond is None:
                raise ValueError("AMPGenerator: got a global condition g but gin_channels was 0")
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = average_blocks(up(x), self.resblocks, i, self.num_kernels)
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x)

    def fold_weight_norm(self) -> int:
        """Bake weight norm into plain weights for inference; returns the number of layers folded."""
        return fold_weight_norm(self)
