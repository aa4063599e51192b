"""Echelon checkpoint layout: one directory per saved step, written atomically.

::

    <exp_dir>/checkpoints/step_00001000/
        meta.json                    step, epoch, files (name -> size, sha256), config hash, versions
        config.json                  the resolved config (what inference reads back)
        <model>.safetensors          weights of each model (e.g. generator, discriminator)
        optimizer_<name>.pt          optimizer states
        scheduler_<name>.pt          scheduler states
        trainer_state.pt             counters and RNG states (python, numpy, torch, cuda)

Everything is written into a hidden temporary directory first (``utils.io.make_temp_dir``, umask modes) and
published by a rename, so a crash (even ``kill -9``) never leaves a half-written checkpoint behind.
``meta.json`` is written last and records every file's size and sha256, so a checkpoint damaged later (a
truncated copy, a full disk during an rsync) is recognised: :func:`verify_checkpoint` names the bad file and
:func:`latest_valid_checkpoint` falls back to the newest checkpoint that is intact. ``.pt`` files hold only
tensors and plain Python containers and are loaded with ``weights_only=True``. The newest checkpoint is found
from ``meta.json``, never by parsing folder names.

Also here, for every model family (official-format files included): :func:`load_state_dict_strict`,
:func:`read_state_dict_file` and :func:`save_state_dict_file`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch
from safetensors.torch import load_file, save_file

from utils.io import atomic_torch_save, current_umask, make_temp_dir, publish_dir
from utils.config import migrate_renamed_keys

log = logging.getLogger(__name__)

META = "meta.json"
CONFIG = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or does not match the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file or directory does not exist."""


class StateDictMismatchError(CheckpointError, ValueError):
    """A state dict's keys or shapes do not fit the model it is loaded into."""


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
    final = root / f"step_{step:08d}"
    tmp = make_temp_dir(root, prefix=".tmp-step_")
    try:
        for name, model in models.items():
            save_file(_contiguous(model.state_dict()), str(tmp / f"{name}.safetensors"), metadata={"format": "pt"})
        for name, opt in (optimizers or {}).items():
            torch.save(opt.state_dict(), tmp / f"optimizer_{name}.pt")
        for name, sched in (schedulers or {}).items():
            torch.save(sched.state_dict(), tmp / f"scheduler_{name}.pt")
        if trainer_state is not None:
            torch.save(dict(trainer_state), tmp / "trainer_state.pt")
        files = {path.name: file_record(path) for path in sorted(tmp.iterdir())}
        with open(tmp / CONFIG, "w", encoding="utf-8") as fh:  # vouched for by config_hash
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
        _fsync_all(tmp)  # file contents reach the disk before meta.json vouches for them
        with open(tmp / META, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        publish_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fsync_all(folder: Path) -> None:
    mode = 0o666 & ~current_umask()  # safetensors and torch.save may create private (0600) files
    for path in folder.iterdir():
        os.chmod(path, mode)
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> Dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of one checkpoint file (what meta.json records)."""
    return {"size": path.stat().st_size, "sha256": sha256_of(path)}


def verify_checkpoint(ckpt_dir: str | os.PathLike, hashes: bool = True) -> Optional[str]:
    """None if every file meta.json lists is present with its recorded size (and sha256); else the problem.

    Checkpoints written before sizes and hashes were recorded (``files`` a plain list) are checked for
    presence only.
    """
    ckpt_dir = Path(ckpt_dir)
    try:
        meta = read_meta(ckpt_dir)
    except (CheckpointError, ValueError) as err:
        return f"{ckpt_dir / META}: unreadable ({err})"
    files = meta.get("files", [])
    records = files if isinstance(files, dict) else {name: None for name in files}
    for name, record in records.items():
        path = ckpt_dir / name
        if not path.is_file():
            return f"{path}: missing"
        if record is None:
            continue
        size = path.stat().st_size
        if size != record["size"]:
            return f"{path}: {size} bytes, meta.json recorded {record['size']} (truncated or replaced)"
        if hashes and sha256_of(path) != record["sha256"]:
            return f"{path}: sha256 differs from meta.json (corrupt)"
    if isinstance(files, dict):  # new-style checkpoints: the config must be the one that was saved
        try:
            if config_hash(_read_json(ckpt_dir / CONFIG, "checkpoint config")) != meta.get("config_hash"):
                return f"{ckpt_dir / CONFIG}: differs from the config_hash in meta.json"
        except (CheckpointError, ValueError) as err:
            return f"{ckpt_dir / CONFIG}: unreadable ({err})"
    return None


def latest_valid_checkpoint(root: str | os.PathLike, hashes: bool = True) -> Optional[Path]:
    """The newest intact checkpoint under ``root`` (None if there is none at all).

    A damaged newer checkpoint is skipped with a warning that names the bad file; when checkpoints exist but
    none is intact, :class:`CheckpointError` lists what is wrong with the newest one. ``hashes=False`` checks
    presence and sizes only (what loading for inference needs; ``--resume`` checks the sha256 too).
    """
    found = list_checkpoints(root)
    problems = []
    for path in reversed(found):
        problem = verify_checkpoint(path, hashes)
        if problem is None:
            if problems:
                log.warning("using %s instead", path)
            return path
        problems.append(problem)
        log.warning("checkpoint %s is damaged, skipping it: %s", path, problem)
    if problems:
        raise CheckpointError(f"no intact checkpoint under {root}: {len(problems)} found, all damaged "
                              f"(newest: {problems[0]})")
    return None


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
            except (ValueError, KeyError) as err:  # a checkpoint whose meta.json was damaged: say so, skip it
                log.warning("ignoring %s: unreadable %s (%s)", path, META, err)
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


def _read_json(path: Path, what: str) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable {what} ({err})") from err


def read_meta(ckpt_dir: str | os.PathLike) -> Dict[str, Any]:
    path = Path(ckpt_dir) / META
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir} is not an Echelon checkpoint (no {META})")
    return _read_json(path, "checkpoint metadata")


def read_config(ckpt_dir: str | os.PathLike) -> Dict[str, Any]:
    """The checkpoint's saved config, with keys renamed since it was written brought up to date."""
    path = Path(ckpt_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir} has no {CONFIG}")
    return migrate_renamed_keys(_read_json(path, "checkpoint config"), str(path))


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """Accept a checkpoint dir, a ``checkpoints/`` dir or an experiment dir; return the checkpoint dir.

    In a ``checkpoints/`` or experiment dir the newest *intact* checkpoint is chosen (see
    :func:`latest_valid_checkpoint`); files are checked by presence and size here, since this runs on every
    load (hashing every file, optimizer states included, each time cost more than the load).
    """
    path = Path(path)
    if (path / META).is_file():
        problem = verify_checkpoint(path, hashes=False)
        if problem is not None:
            raise CheckpointError(f"damaged checkpoint: {problem}")
        return path
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    for candidate in (path, path / "checkpoints"):
        latest = latest_valid_checkpoint(candidate, hashes=False)
        if latest is not None:
            return latest
    raise CheckpointError(f"no Echelon checkpoint found at {path}")


def model_type_of(ckpt_dir: str | os.PathLike) -> str:
    """The ``model_type`` recorded in a checkpoint's config."""
    model_type = read_config(ckpt_dir).get("model_type")
    if not model_type:
        raise CheckpointError(f"{Path(ckpt_dir) / CONFIG} records no model_type")
    return str(model_type)


def expect_model_type(ckpt_dir: str | os.PathLike, *expected: str) -> Dict[str, Any]:
    """Return the checkpoint's config, or fail naming the model type it holds when it is not ``expected``."""
    config = read_config(ckpt_dir)
    held = config.get("model_type")
    if held not in expected:
        want = " or ".join(repr(e) for e in expected)
        raise CheckpointError(f"{ckpt_dir} holds a {held!r} checkpoint, not {want}")
    return config


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


# ---------------------------------------------------------------------- plain state-dict files (official formats)
def extract_state_dict(obj: Any, source: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """Return the tensor dict of a plain state dict or of ``{'model': state_dict, ...}``."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise StateDictMismatchError(
            f"{source}: expected a state dict or {{'model': state_dict}}, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise StateDictMismatchError(f"{source}: entries that are not tensors: {bad[:5]}")
    return dict(obj)


def read_state_dict_file(path: str | os.PathLike, mmap: bool = False) -> Dict[str, torch.Tensor]:
    """A ``.pth`` file (plain state dict or ``{'model': ...}``) loaded with ``weights_only=True``.

    ``mmap``: tensors map the file instead of being read into memory (zip-format files; a legacy file is read):
    loading them into a model then holds one copy of the weights in memory, not two.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # truncated zip, pickle with code, ...
        raise CheckpointError(f"{path}: cannot read checkpoint ({str(err).splitlines()[0]})") from err
    return extract_state_dict(obj, str(path))


def load_state_dict_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict load with a one-line summary of missing/unexpected keys or shape mismatches when it fails."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise StateDictMismatchError(
            f"{source}: {len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"keys (e.g. {unexpected[:3]}) for this model config")
    shapes = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        raise StateDictMismatchError(f"{source}: {len(shapes)} shape mismatches, e.g. {k}: checkpoint "
                                     f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=True)


def save_state_dict_file(model: torch.nn.Module, path: str | os.PathLike, wrap: bool = False,
                         **extra: Any) -> Path:
    """Write ``model``'s state dict as an official-style ``.pth`` (``wrap=True``: ``{'model': sd, **extra}``),
    atomically. A model whose weight norm was folded has no ``weight_g``/``weight_v`` and is refused."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not any(k.endswith(".weight_g") for k in state):
        raise ValueError("save_official_checkpoint: weight norm is folded; the official format needs weight_g/v")
    return atomic_torch_save(path, {"model": state, **extra} if wrap else state)
