"""Echelon checkpoint layout: one directory per saved step, written atomically.

::

    <exp_dir>/checkpoints/step_00001000/
        meta.json                    step, epoch, batch offset, files, config hash, versions
        config.json                  the resolved config (what inference reads back)
        <model>.safetensors          weights of each model (e.g. generator, discriminator)
        optimizer_<name>.pt          optimizer states
        scheduler_<name>.pt          scheduler states
        trainer_state.pt             counters and RNG states (python, numpy, torch, cuda)

Everything is written into a hidden temporary directory first and renamed into place, so a crash (even
``kill -9``) never leaves a half-written checkpoint behind. ``.pt`` files hold only tensors and plain Python
containers and are loaded with ``weights_only=True``. The newest checkpoint is found from ``meta.json``, never
by parsing folder names.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import torch
from safetensors.torch import load_file, save_file

META = "meta.json"
CONFIG = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the model."""


def config_hash(config: Mapping[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _contiguous(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone to be safe.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    *,
    models: Mapping[str, torch.nn.Module],
    config: Mapping[str, Any],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    trainer_state: Mapping[str, Any] | None = None,
    epoch: int = 0,
    extra_meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``root/step_{step:08d}`` atomically and return its path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-step_"))
    try:
        files: List[str] = []
        for name, model in models.items():
            fname = f"{name}.safetensors"
            save_file(_contiguous(model.state_dict()), str(tmp / fname), metadata={"format": "pt"})
            files.append(fname)
        for name, opt in (optimizers or {}).items():
            fname = f"optimizer_{name}.pt"
            torch.save(opt.state_dict(), tmp / fname)
            files.append(fname)
        for name, sched in (schedulers or {}).items():
            fname = f"scheduler_{name}.pt"
            torch.save(sched.state_dict(), tmp / fname)
            files.append(fname)
        if trainer_state is not None:
            torch.save(dict(trainer_state), tmp / "trainer_state.pt")
            files.append("trainer_state.pt")
        with open(tmp / CONFIG, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=2)
        meta = {
            "step": int(step),
            "epoch": int(epoch),
            "models": sorted(models),
            "files": files,
            "config_hash": config_hash(config),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            **dict(extra_meta or {}),
        }
        with open(tmp / META, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
        for path in tmp.iterdir():  # flush file contents before the rename makes them visible
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def list_checkpoints(root: str | os.PathLike) -> List[Path]:
    """Complete checkpoints under ``root``, oldest first (by the step recorded in meta.json)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        meta = path / META
        if path.is_dir() and not path.name.startswith(".") and meta.is_file():
            try:
                found.append((json.loads(meta.read_text())["step"], path))
            except (ValueError, KeyError):
                continue  # unreadable meta: not a checkpoint we wrote
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | os.PathLike) -> Optional[Path]:
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


def prune_checkpoints(root: str | os.PathLike, keep_last: int) -> List[Path]:
    """Delete all but the newest ``keep_last`` checkpoints (and stale temporary dirs); return removed paths."""
    root = Path(root)
    removed = []
    if keep_last > 0:
        for path in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for tmp in root.glob(".tmp-step_*"):
        shutil.rmtree(tmp, ignore_errors=True)
    return removed


def read_meta(ckpt_dir: str | os.PathLike) -> Dict[str, Any]:
    path = Path(ckpt_dir) / META
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir} is not an Echelon checkpoint (no {META})")
    return json.loads(path.read_text(encoding="utf-8"))


def read_config(ckpt_dir: str | os.PathLike) -> Dict[str, Any]:
    path = Path(ckpt_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir} has no {CONFIG}")
    return json.loads(path.read_text(encoding="utf-8"))


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """Accept a checkpoint dir, a ``checkpoints/`` dir or an experiment dir; return the checkpoint dir."""
    path = Path(path)
    if (path / META).is_file():
        return path
    for candidate in (path, path / "checkpoints"):
        latest = latest_checkpoint(candidate)
        if latest is not None:
            return latest
    raise CheckpointError(f"no Echelon checkpoint found at {path}")


def load_model_weights(ckpt_dir: str | os.PathLike, name: str) -> Dict[str, torch.Tensor]:
    path = Path(ckpt_dir) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir} has no weights for model {name!r} ({path.name})")
    return load_file(str(path))


def load_torch_state(path: str | os.PathLike) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_partial(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> Dict[str, List[str]]:
    """Load the entries of ``state`` whose name and shape match; report what was missing/unexpected/mismatched."""
    own = model.state_dict()
    usable = {}
    mismatched, mismatched_keys = [], set()
    for key, value in state.items():
        if key in own:
            if own[key].shape == value.shape:
                usable[key] = value
            else:
                mismatched_keys.add(key)
                mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    result = model.load_state_dict(usable, strict=False)
    return {
        "missing": sorted(set(result.missing_keys) - mismatched_keys),
        "unexpected": sorted(k for k in state if k not in own),
        "mismatched": mismatched,
    }


def files_present(ckpt_dir: Path, names: Iterable[str]) -> None:
    missing = [n for n in names if not (ckpt_dir / n).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {ckpt_dir} is incomplete: missing {', '.join(missing)}")
