"""Checking ``--device`` before any work starts: one line naming what is wrong, not a traceback mid-run.

``resolve_device("gpu")`` -> ``"cuda"``; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are checked against this
PyTorch build and machine (a CPU-only wheel, no visible GPU, an index past the last GPU).
"""

from __future__ import annotations

from utils.wording import plural

ALIASES = {"gpu": "cuda"}


class DeviceError(ValueError):
    """A device this PyTorch build or machine cannot use; the message names it and why."""


def resolve_device(name: str, option: str = "--device") -> str:
    """The device string to use (aliases resolved), or :class:`DeviceError` when it is unknown or absent."""
    import torch

    text = ALIASES.get(str(name).strip().lower(), str(name).strip())
    base, _, index = text.partition(":")
    base = ALIASES.get(base.lower(), base.lower())
    text = f"{base}:{index}" if index else base
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"{option} {name!r}: unknown device (use cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(f"{option} {name}: this PyTorch ({torch.__version__}) is built without CUDA; "
                              "use --device cpu or install a CUDA build")
        if not torch.cuda.is_available():
            raise DeviceError(f"{option} {name}: no CUDA GPU is visible (check the driver and "
                              "CUDA_VISIBLE_DEVICES); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{option} {name}: this machine has {plural(torch.cuda.device_count(), 'GPU')} "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError(f"{option} {name}: Apple MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise DeviceError(f"{option} {name!r}: unsupported device type {device.type!r} (use cpu, cuda, cuda:N or mps)")
    return text


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    break  # the first processor's block ends at its blank line
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_bf16_instructions() -> tuple[str, ...]:
    """The native bfloat16 instruction sets this CPU reports (``avx512_bf16``, ``amx_bf16``), from the Linux
    CPU flags; empty elsewhere or when it has none. oneDNN runs bfloat16 convolutions about twice as fast as
    float32 with them, and emulates them (slower than float32) without."""
    return _bf16_sets(set(_cpuinfo().get("flags", "").split()))


def cpu_has_avx512() -> bool:
    """Whether this CPU reports AVX-512 Foundation (Linux CPU flags; False elsewhere)."""
    return "avx512f" in _cpuinfo().get("flags", "").split()


def _bf16_sets(flags: set[str]) -> tuple[str, ...]:
    return tuple(name for name in ("avx512_bf16", "amx_bf16") if name in flags)


def cpu_summary() -> str:
    """One line for benchmark headers: model, logical CPUs and widest float vector ISA, e.g.
    ``AMD EPYC (family 23, model 1), 2 logical CPUs, AVX2 (no AVX-512)``.

    Speed-ups over other code depend on it: MKL (torch's float32 GEMMs) runs AVX2 kernels on AMD CPUs even where
    they have AVX-512, oneDNN and onnxruntime use AVX-512 where it exists, so a ratio measured on one kind of CPU
    does not carry over to another (``benchmarks/README.md``)."""
    import os

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    model = info.get("model name", "unknown CPU")
    if "cpu family" in info:
        model += f" (family {info['cpu family']}, model {info.get('model', '?')})"
    if "avx512f" in flags:
        bf16 = _bf16_sets(flags)  # from the flags already read: /proc/cpuinfo once
        isa = "AVX-512" + (" + " + ", ".join(bf16) if bf16 else "")
    elif "avx2" in flags:
        isa = "AVX2 (no AVX-512)"
    else:
        isa = "no AVX2" if flags else "vector ISA unknown"
    return f"{model}, {os.cpu_count()} logical CPUs, {isa}"
