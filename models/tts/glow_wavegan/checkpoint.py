"""Official Glow-TTS checkpoints (jaywalnut310/glow-tts ``G_*.pth``) into the stage-2 model.

Format written by glow-tts ``utils.save_checkpoint``: ``{'model': state_dict, 'iteration', 'optimizer',
'learning_rate'}``; a bare state dict and DataParallel ``module.`` prefixes are accepted too.  Loading is strict
(every key, every shape) with ``weights_only=True`` through the shared :mod:`models.base.checkpoint` helpers; a
mismatch raises one line naming the file and the keys (``StateDictMismatchError``).
The symbol-table size and latent size are read from the weights, the rest from the official ``config.json``
``model`` block (or any mapping of ``FlowGenerator`` keyword arguments).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Mapping

import torch

from models.base.checkpoint import load_state_dict_strict, read_state_dict_file
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.acoustic_config import GlowTTSConfig


def read_glowtts_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """The model state dict of an official ``G_*.pth`` (or a bare state-dict file), ``module.`` prefixes removed."""
    state = read_state_dict_file(path)
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


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
