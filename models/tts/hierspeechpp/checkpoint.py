"""Loading and writing official-format HierSpeech++ synthesizer checkpoints.

The released synthesizer files (``hierspeechpp_v1.1_ckpt.pth`` ...) are plain state dicts; the fine-tuning
G+D release and VITS-style training checkpoints wrap them as ``{'model': state_dict, 'iteration', ...}``.
Both load strictly (every key, including ``emb.weight`` and the anti-aliasing filter buffers) with
``weights_only=True`` on any device; nothing is renamed or dropped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping

import torch

from models.tts.hierspeechpp.config import HierSpeechPPConfig, load_official_config
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer


def extract_state_dict(obj: Any, source: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """Return the tensor dict of a plain state dict or of ``{'model': state_dict, ...}``."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{source}: expected a state dict or {{'model': state_dict}}, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{source}: entries that are not tensors: {bad[:5]}")
    return dict(obj)


def read_official_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """``torch.load(path, map_location='cpu', weights_only=True)`` + unwrapping, with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return extract_state_dict(obj, str(path))


def load_state_dict_strict(model: HierSpeechPPSynthesizer, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict load with a one-line summary of missing/unexpected keys when it fails."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{source}: {len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                         f"keys (e.g. {unexpected[:3]}) for this model config")
    shapes = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        raise ValueError(f"{source}: {len(shapes)} shape mismatches, e.g. {k}: checkpoint "
                         f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=True)


def load_official_checkpoint(path: str | Path, config_json: str | Path | HierSpeechPPConfig | None = None,
                             device: str | torch.device = "cpu") -> HierSpeechPPSynthesizer:
    """Build the synthesizer from an official ``config.json`` and load an official ``.pth`` strictly.

    ``config_json`` defaults to ``config.json`` next to the checkpoint (where the official scripts look).
    Returns the model in eval mode on ``device`` (weight norm not folded; see ``prepare_for_inference``).
    """
    path = Path(path)
    if config_json is None:
        config_json = path.parent / "config.json"
    cfg = config_json if isinstance(config_json, HierSpeechPPConfig) else load_official_config(config_json)
    model = HierSpeechPPSynthesizer.from_config(cfg)
    load_state_dict_strict(model, read_official_state_dict(path), str(path))
    return model.to(device).eval()


def save_official_checkpoint(model: HierSpeechPPSynthesizer, path: str | Path, wrap: bool = False,
                             **extra: Any) -> None:
    """Write the state dict in the official layout (``wrap=True``: ``{'model': sd, **extra}``), atomically.

    A model whose weight norm was folded has no ``weight_g``/``weight_v`` and is refused.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not any(k.endswith(".weight_g") for k in state):
        raise ValueError("save_official_checkpoint: weight norm is folded; the official format needs weight_g/v")
    obj: Any = {"model": state, **extra} if wrap else state
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-", suffix=".pth")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
