"""Loading and writing HierSpeech++ synthesizer checkpoints (official ``.pth`` files and Echelon directories).

The released synthesizer files (``hierspeechpp_v1.1_ckpt.pth`` ...) are plain state dicts; the fine-tuning
G+D release and VITS-style training checkpoints wrap them as ``{'model': state_dict, 'iteration', ...}``.
Both load strictly (every key, including ``emb.weight`` and the anti-aliasing filter buffers) with
``weights_only=True`` on any device; nothing is renamed or dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.base import checkpoint as ckpt
from models.base.checkpoint import load_state_dict_strict, read_state_dict_file, save_state_dict_file
from models.tts.hierspeechpp.config import HierSpeechPPConfig, load_official_config
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from utils.memory import release_freed_memory


def load_official_checkpoint(path: str | Path, config_json: str | Path | HierSpeechPPConfig | None = None,
                             device: str | torch.device = "cpu", inference_only: bool = False) -> HierSpeechPPSynthesizer:
    """Build the synthesizer from an official ``config.json`` and load an official ``.pth`` strictly.

    ``config_json`` defaults to ``config.json`` next to the checkpoint (where the official scripts look).
    Returns the model in eval mode on ``device`` (weight norm not folded; see ``prepare_for_inference``).
    ``inference_only``: the training-only submodules are dropped before loading and their weights never read
    (the file is memory-mapped, so they are not even paged in); every other key is still checked strictly.
    """
    path = Path(path)
    state = read_state_dict_file(path, mmap=True)  # a missing file is named before the config is looked for
    if config_json is None:
        config_json = path.parent / "config.json"
    cfg = config_json if isinstance(config_json, HierSpeechPPConfig) else load_official_config(config_json)
    model = HierSpeechPPSynthesizer.from_config(cfg)
    if inference_only:
        model.drop_training_modules()
        state = {k: v for k, v in state.items() if k.split(".", 1)[0] not in model.TRAINING_ONLY}
        # their freshly initialised weights (~130 MB) go back to the OS before the checkpoint's pages come in:
        # peak RSS of loading the released synthesizer 1204 -> 965 MB
        release_freed_memory()
    load_state_dict_strict(model, state, str(path))
    return model.to(device).eval()


def load_echelon_synthesizer(ckpt_dir: str | Path) -> tuple[HierSpeechPPSynthesizer, dict]:
    """The synthesizer of an Echelon ``hierspeechpp`` checkpoint and the checkpoint's config."""
    path = ckpt.resolve_checkpoint_dir(ckpt_dir)
    raw = ckpt.expect_model_type(path, "hierspeechpp")
    model = HierSpeechPPSynthesizer.from_config(raw.get("model", {}))
    load_state_dict_strict(model, ckpt.load_model_weights(path, "generator"), str(path))
    return model, raw


def save_official_checkpoint(model: HierSpeechPPSynthesizer, path: str | Path, wrap: bool = False,
                             **extra: Any) -> None:
    """Write the state dict in the official layout (``wrap=True``: ``{'model': sd, **extra}``), atomically.

    A model whose weight norm was folded has no ``weight_g``/``weight_v`` and is refused.
    """
    save_state_dict_file(model, path, wrap=wrap, **extra)
