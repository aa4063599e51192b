"""Loading the reference implementations' checkpoints strictly (``weights_only=True``).

Accepted: a plain state_dict file (``.pt``/``.pth``/``.bin``/``.ckpt``), a dict with the weights under
``model`` (lifeiteng's icefall checkpoints; its other entries — optimizer, scheduler, params — are ignored)
or ``state_dict``, a ``.safetensors`` file, and an accelerate ``save_state`` folder as Amphion writes
(``model.safetensors`` or ``pytorch_model.bin`` next to ``optimizer.bin``, ``scheduler.bin``,
``random_states_0.pkl``). ``module.`` prefixes (DDP) are removed. accelerate writes safetensors without the
second name of tied tensors (``nar_predict_layers.{j}.weight``, j < Q-2): such a key is restored from its
partner, and only then is the key set compared. Any missing, unexpected or mis-shaped key,
or tied weights that differ, is a one-line :class:`ValleCheckpointError`: Amphion's own loader would silently
use ``strict=False`` and keep random weights.

Sizes can be read back from a state_dict (:func:`config_from_state_dict`); the head count and the prefix mode
are not in the weights and come from Amphion's ``args.json``/``exp_config.json`` (``model`` block) or the caller.
"""

from __future__ import annotations

import json
import pathlib
import pickle
from pathlib import Path
from typing import Dict, Mapping, Optional

import torch

from models.tts.valle.config import ValleModelConfig

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.bin", "model.pt")


class ValleCheckpointError(ValueError):
    """A reference checkpoint cannot be read or does not fit the model; the message names file and keys."""


def _load_file(path: Path) -> Mapping:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # icefall checkpoints keep the run's params (paths among them) next to the weights.
    safe = [pathlib.PosixPath, pathlib.PurePosixPath, pathlib.WindowsPath, pathlib.PureWindowsPath]
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValleCheckpointError(f"{path}: cannot be read with weights_only=True ({first})") from err


def weights_file(path: str | Path) -> Path:
    """The weights file of ``path`` (a file, or an accelerate checkpoint folder)."""
    path = Path(path)
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        raise ValleCheckpointError(f"{path}: no weights file ({', '.join(WEIGHT_FILES)}) in this folder")
    if not path.is_file():
        raise ValleCheckpointError(f"{path}: no such checkpoint file or folder")
    return path


def read_reference_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """Tensors of a reference checkpoint under the reference key names (``module.`` stripped)."""
    file = weights_file(path)
    data = _load_file(file)
    for key in ("model", "state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not data:
        raise ValleCheckpointError(f"{file}: holds no state_dict (expected tensors, or a dict with 'model')")
    out = {}
    for key, value in data.items():
        if not isinstance(value, torch.Tensor):
            raise ValleCheckpointError(f"{file}: entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise one line naming ``source`` and the first offending keys unless keys and shapes match exactly."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items() if k in state and state[k].shape != v.shape]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            problems.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
    if problems:
        raise ValleCheckpointError(f"{source}: does not fit this VALL-E: {'; '.join(problems)}")
    for out_key, emb_key in getattr(model, "tied_pairs", lambda: [])():
        if not state[out_key].is_meta and not torch.equal(state[out_key], state[emb_key]):
            raise ValleCheckpointError(f"{source}: tied weights {out_key} and {emb_key} differ")


def restore_tied(model: torch.nn.Module, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Fill a tied key that the file dropped (safetensors de-duplication) from its partner."""
    state = dict(state)
    for out_key, emb_key in getattr(model, "tied_pairs", lambda: [])():
        if out_key not in state and emb_key in state:
            state[out_key] = state[emb_key]
        elif emb_key not in state and out_key in state:
            state[emb_key] = state[out_key]
    return state


def load_reference_checkpoint(model: torch.nn.Module, path: str | Path) -> Path:
    """Strictly load a reference checkpoint (file or folder) into ``model``; returns the weights file."""
    file = weights_file(path)
    state = restore_tied(model, read_reference_state_dict(file))
    check_state_dict(model, state, str(file))
    model.load_state_dict(state, strict=True)
    return file


def config_from_state_dict(
    state: Mapping[str, torch.Tensor], nhead: int, prefix_mode: int = 1, nar_scale_factor: float = 1.0
) -> ValleModelConfig:
    """Sizes from the weights: width, layers, quantizers, vocabularies, BOS; ``nhead``/``prefix_mode`` given."""
    text_vocab, d_model = state["ar_text_embedding.word_embeddings.weight"].shape
    audio_vocab = state["ar_predict_layer.weight"].shape[0] - 1
    audio_rows = state["ar_audio_embedding.word_embeddings.weight"].shape[0]
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("ar_decoder.layers."))
    quantizers = 1 + sum(1 for k in state if k.startswith("nar_predict_layers."))
    return ValleModelConfig(
        d_model=int(d_model), nhead=nhead, num_layers=layers, num_quantizers=quantizers,
        num_text_tokens=int(text_vocab), num_audio_tokens=int(audio_vocab),
        norm_first="ar_decoder.norm.weight" in state, prepend_bos=audio_rows == audio_vocab + 2,
        prefix_mode=prefix_mode, nar_scale_factor=nar_scale_factor,
    )  # fmt: skip


def config_from_amphion_args(path: str | Path) -> ValleModelConfig:
    """ValleModelConfig from Amphion's ``args.json``/``exp_config.json`` (its ``model`` block)."""
    path = Path(path)
    try:
        block = json.loads(path.read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError) as err:
        raise ValleCheckpointError(f"{path}: no readable 'model' block ({err})") from err
    names = {
        "decoder_dim": "d_model", "nhead": "nhead", "num_decoder_layers": "num_layers",
        "num_quantizers": "num_quantizers", "text_token_num": "num_text_tokens",
        "audio_token_num": "num_audio_tokens", "norm_first": "norm_first", "share_embedding": "share_embedding",
        "prepend_bos": "prepend_bos", "prefix_mode": "prefix_mode", "nar_scale_factor": "nar_scale_factor",
    }  # fmt: skip
    if block.get("add_prenet"):
        raise ValleCheckpointError(f"{path}: add_prenet=true is not supported (no released model uses it)")
    kwargs = {ours: block[theirs] for theirs, ours in names.items() if theirs in block}
    try:
        return ValleModelConfig(**kwargs)
    except ValueError as err:
        raise ValleCheckpointError(f"{path}: {err}") from err


def find_beside(path: str | Path, names: tuple[str, ...]) -> Optional[Path]:
    """The first of ``names`` next to a checkpoint file/folder or in one of its parent folders (three up)."""
    path = Path(path).resolve()
    for folder in [path if path.is_dir() else path.parent, *path.parents][:4]:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def find_amphion_args(path: str | Path) -> Optional[Path]:
    """``args.json`` (or ``exp_config.json``) of an Amphion experiment, if present."""
    return find_beside(path, ("args.json", "exp_config.json"))
