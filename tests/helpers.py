"""Shared test helpers: parity-fixture loading and the bundled real-speech corpus."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
MINI_CORPUS = REPO_ROOT / "egs" / "mini" / "corpus"


def fixtures_dir() -> Path:
    """Directory of the official parity fixtures: $ECHELON_FIXTURES or ../shared/fixtures."""
    return Path(os.environ.get("ECHELON_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


def load_fixture(relpath: str) -> Dict[str, Any]:
    """Load one fixture file with ``weights_only=True``; skip the test only if the fixture dir is absent."""
    root = fixtures_dir()
    if not root.is_dir():
        pytest.skip(f"parity fixtures not found at {root} (set ECHELON_FIXTURES)")
    path = root / relpath
    if not path.is_file():
        raise FileNotFoundError(f"fixture file missing: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def float_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Fixture weights are stored as fp16 (some as strided views): copy to contiguous float32."""
    return {k: (v.float().contiguous() if v.is_floating_point() else v.clone()) for k, v in state_dict.items()}
