"""Official Glow-TTS checkpoints (jaywalnut310/glow-tts ``G_*.pth``) into the stage-2 model.

Format written by glow-tts ``utils.save_checkpoint``: ``{'model': state_dict, 'iteration', 'optimizer',
'learning_rate'}``; a bare state dict and DataParallel ``module.`` prefixes are accepted too.  Loading is strict
(every key, every shape) with ``weights_only=True``; a mismatch raises one line naming the file and the keys.
The symbol-table size and latent size are read from the weights, the rest from the official ``config.json``
``model`` block (or any mapping of ``FlowGenerator`` keyword arguments).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Mapping

import torch

from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.acoustic_config import GlowTTSConfig


class CheckpointMismatchError(RuntimeError):
    """Weights (an official Glow-TTS file or an Echelon checkpoint) do not match the model built from the config."""


def read_glowtts_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """The model state dict of an official ``G_*.pth`` (or a bare state-dict file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Glow-TTS checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise CheckpointMismatchError(f"{path}: not a weights-only torch file ({type(err).__name__}: {err})") from err
    state = obj.get("model", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointMismatchError(f"{path}: no state dict of tensors (expected {{'model': state_dict}})")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_state_dict_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` requiring identical keys and shapes; one-line error otherwise."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or mismatched:
        parts = [f"{name} {len(keys)} (first: {keys[0]})" for name, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", mismatched)) if keys]
        raise CheckpointMismatchError(f"{source}: does not match the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def config_from_official(model_block: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> GlowTTSConfig:
    """:class:`GlowTTSConfig` from an official ``model`` block; ``n_vocab``/``out_channels`` from the weights."""
    known = {f.name for f in dataclasses.fields(GlowTTSConfig)}
    unknown = sorted(set(model_block) - known)
    if unknown:
        raise ValueError(f"Glow-TTS config: unknown model keys {unknown}")
    sizes = {}
    if "encoder.emb.weight" in state:
        sizes["n_vocab"] = int(state["encoder.emb.weight"].shape[0])
    if "encoder.proj_m.weight" in state:
        sizes["out_channels"] = int(state["encoder.proj_m.weight"].shape[0])
    return GlowTTSConfig(**{**dict(model_block), **sizes})


def load_official_glowtts(path: str | Path, config: Mapping[str, Any] | str | Path | None = None) -> GlowTTS:
    """Build the model from ``config`` (official ``config.json`` path/dict or its ``model`` block; default
    ``config.json`` next to the checkpoint) and load ``path`` strictly. Returns the model in eval mode."""
    path = Path(path)
    if config is None:
        config = path.parent / "config.json"
    if not isinstance(config, Mapping):
        config_path = Path(config)
        if not config_path.is_file():
            raise FileNotFoundError(f"Glow-TTS config not found: {config_path} (pass it explicitly)")
        config = json.loads(config_path.read_text(encoding="utf-8"))
    block = config.get("model", config)
    state = read_glowtts_state_dict(path)
    model = GlowTTS.from_config(config_from_official(block, state))
    load_state_dict_strict(model, state, str(path))
    return model.eval()
