"""maum-ai/wavegrad2 checkpoints -> :class:`WaveGrad2` (strict, ``weights_only=True``, through
:func:`models.base.checkpoint.load_state_dict_strict`).

maum-ai wraps every decoder convolution in a ``Conv1dWithInitialization`` module (``...conv.conv1d.weight``);
ours are plain ``nn.Conv1d`` at the same place, so the only renaming is dropping that ``conv1d`` level. Its
Lightning checkpoints keep the weights under ``state_dict`` and the hyper-parameters under
``hyper_parameters``; a bare state dict loads with an explicit config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from models.base import checkpoint as ckpt
from models.tts.wavegrad2.config import from_maum_config
from models.tts.wavegrad2.model import WaveGrad2


def maum_to_echelon_keys(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename maum-ai keys (``decoder.films.0.scale_conv.conv1d.weight`` -> ``decoder.films.0.scale_conv.weight``)."""
    return {key.replace(".conv1d.", "."): value for key, value in state.items()}


def model_from_maum(state: Mapping[str, torch.Tensor], hparams: Mapping[str, Any], n_symbols: int,
                    source: str = "maum-ai checkpoint") -> WaveGrad2:
    """Build from maum-ai's hyper-parameters and load its (maum-named) weights strictly; eval mode."""
    model = WaveGrad2.from_config(from_maum_config(hparams, n_symbols))
    ckpt.load_state_dict_strict(model, maum_to_echelon_keys(state), source)
    return model.eval()


def load_maum_checkpoint(path: str | Path, hparams: Optional[Mapping[str, Any]] = None,
                         n_symbols: Optional[int] = None) -> WaveGrad2:
    """A maum-ai ``.ckpt`` (Lightning: ``state_dict`` + ``hyper_parameters``) or a bare state dict.

    ``n_symbols`` defaults to the embedding table's size in the checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ckpt.CheckpointNotFoundError(f"maum-ai wavegrad2 checkpoint not found: {path}")
    try:
        raw = ckpt.load_torch_state(path)
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # truncated zip, pickle with code, ...
        raise ckpt.CheckpointError(f"{path}: cannot read checkpoint ({str(err).splitlines()[0]})") from err
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or "encoder.embedding.weight" not in state:
        raise ValueError(f"{path}: no maum-ai wavegrad2 weights (missing 'encoder.embedding.weight')")
    hparams = hparams if hparams is not None else raw.get("hyper_parameters")
    if hparams is None:
        raise ValueError(f"{path}: no hyper_parameters stored; pass the hparameter.yaml contents as hparams")
    n_symbols = n_symbols if n_symbols is not None else int(state["encoder.embedding.weight"].shape[0])
    return model_from_maum({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                           hparams, n_symbols, str(path))

