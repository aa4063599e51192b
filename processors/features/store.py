"""Where features live and how they are written and read: the one ``feature_path`` of Echelon.

Layout: ``<features_dir>/<kind>/<id>.pt`` — one tensor per file (``torch.save``, read with
``weights_only=True``), in the dtype its extractor declares (``float32``, or ``int16`` for integer codes) —
and ``<features_dir>/<kind>/feature.json``, the extractor's name, settings and dtype, so a resumed run cannot
silently mix files made with other settings.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from processors.features.base import FeatureError
from utils.io import atomic_torch_save, atomic_write_text

__all__ = ["feature_path", "as_storage", "save_feature", "load_feature", "is_valid_feature_file", "check_feature_settings",
           "FEATURE_INFO"]

FEATURE_INFO = "feature.json"
PathLike = str | os.PathLike


def feature_path(features_dir: PathLike, kind: str, item_id: str) -> Path:
    """``<features_dir>/<kind>/<item_id>.pt``."""
    return Path(features_dir) / kind / f"{item_id}.pt"


def as_storage(tensor: torch.Tensor, dtype: torch.dtype, where: str) -> torch.Tensor:
    """Check ``tensor`` can be stored as ``dtype`` without loss of meaning and convert it."""
    if not isinstance(tensor, torch.Tensor):
        raise FeatureError(f"{where}: extractor returned {type(tensor).__name__}, expected a tensor")
    if dtype.is_floating_point:
        if not tensor.is_floating_point():
            raise FeatureError(f"{where}: extractor returned {tensor.dtype} for a {dtype} feature")
        if not bool(torch.isfinite(tensor).all()):
            raise FeatureError(f"{where}: feature holds NaN/inf values")
    else:
        if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
            raise FeatureError(f"{where}: integer feature ({dtype}) got {tensor.dtype} values")
        info = torch.iinfo(dtype)
        if tensor.numel() and (int(tensor.min()) < info.min or int(tensor.max()) > info.max):
            raise FeatureError(
                f"{where}: values in [{int(tensor.min())}, {int(tensor.max())}] do not fit {dtype} "
                f"[{info.min}, {info.max}] (declare a wider storage_dtype)"
            )
    # clone: a view would save its whole underlying storage (e.g. the full padded batch)
    return tensor.detach().to("cpu", dtype).contiguous().clone()


def save_feature(features_dir: PathLike, kind: str, item_id: str, tensor: torch.Tensor,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write one feature atomically as ``dtype`` (checked: finite floats, integers that fit)."""
    path = feature_path(features_dir, kind, item_id)
    return atomic_torch_save(path, as_storage(tensor, dtype, f"{kind}/{item_id}"))


def load_feature(features_dir: PathLike, kind: str, item_id: str, required: bool = True) -> Optional[torch.Tensor]:
    """Read one feature in its stored dtype; ``None`` when absent and not ``required``."""
    path = feature_path(features_dir, kind, item_id)
    if not path.is_file():
        if required:
            raise FeatureError(f"no {kind} feature for {item_id!r}: {path} does not exist")
        return None
    value = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(value, torch.Tensor):
        raise FeatureError(f"{path}: expected a tensor, got {type(value).__name__}")
    return value


def is_valid_feature_file(path: PathLike) -> bool:
    """A cheap check (no tensor load) that ``path`` is a complete ``torch.save`` archive: a truncated or
    foreign file has no readable zip directory."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def check_feature_settings(features_dir: PathLike, description: Dict[str, Any], overwrite: bool = False) -> None:
    """Record ``description`` in ``<kind>/feature.json``; if files of other settings are there, refuse
    (unless ``overwrite``: the run recomputes every item, so the record is replaced)."""
    kind = description["name"]
    info = Path(features_dir) / kind / FEATURE_INFO
    wanted = json.dumps(description, sort_keys=True)
    if info.is_file() and not overwrite:
        try:
            stored = json.dumps(json.loads(info.read_text(encoding="utf-8")), sort_keys=True)
        except json.JSONDecodeError as err:
            raise FeatureError(f"{info}: not valid JSON ({err}); delete it or pass --overwrite") from None
        if stored != wanted:
            raise FeatureError(
                f"{info.parent} holds {kind} features made with {stored}, this run asks for {wanted}: "
                f"pass --overwrite to recompute them or use another --out_dir"
            )
        return
    atomic_write_text(info, json.dumps(description, indent=1, sort_keys=True) + "\n")
