"""BaseInference: what ``bins/infer.py`` needs from a registered inference pipeline.

::

    @register("inference", "my_model")
    class MyInference(BaseInference):
        @classmethod
        def from_checkpoint(cls, ckpt_dir, device="cpu") -> "MyInference"   # reads config.json + weights
        @staticmethod
        def add_arguments(parser)                                           # the pipeline's own CLI options
        def run(self, args) -> list[Path]                                   # writes outputs, returns paths

The generic CLI reads ``model_type`` from the checkpoint's saved config (the resolved config written by the
trainer), picks the pipeline from the registry, lets it add its options and calls ``run``. A pipeline that
processes many inputs should skip bad ones, list them (``bad_items.tsv``) and keep what it already wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, List, Mapping, Tuple

import torch

from models.base import checkpoint as ckpt
from utils.config import validate


class BaseInference:
    config_class: type | None = None  # the experiment dataclass used to validate the saved config

    def __init__(self, config: Any, models: Mapping[str, torch.nn.Module], device: str | torch.device = "cpu"):
        self.config = config
        self.models = dict(models)
        self.device = torch.device(device)

    @classmethod
    def load_checkpoint(cls, ckpt_dir: str | Path) -> Tuple[Path, Any, Mapping[str, Any]]:
        """Resolve ``ckpt_dir`` and return (dir, validated config, raw config dict)."""
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        raw = ckpt.read_config(path)
        cfg = validate(raw, cls.config_class) if cls.config_class is not None else raw
        return path, cfg, raw

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str | Path, device: str = "cpu") -> "BaseInference":
        raise NotImplementedError

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add pipeline-specific options (inputs, outputs, sampling knobs)."""

    def run(self, args: argparse.Namespace) -> List[Path]:
        raise NotImplementedError
