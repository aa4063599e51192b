"""Loading TTV checkpoints: an official ``.pth`` (with its ``config.json`` beside it) or an Echelon directory.

Below both the pipeline (``inference.py``) and the ONNX exporter (``onnx_export.py``), which each load a TTV.
"""

from __future__ import annotations

import json
from pathlib import Path

from models.base import checkpoint as ckpt
from models.ttv.hierspeechpp_ttv.config import from_official_config
from models.ttv.hierspeechpp_ttv.model import TextToVec


def load_ttv(path: str | Path) -> TextToVec:
    """Official ``.pth`` (+ ``config.json`` beside it) or an Echelon checkpoint/experiment directory."""
    path = Path(path)
    if path.is_file():
        config = path.parent / "config.json"
        if not config.is_file():
            raise ckpt.CheckpointNotFoundError(f"official TTV checkpoint {path} needs its config.json alongside")
        model = TextToVec.from_config(from_official_config(json.loads(config.read_text(encoding="utf-8"))["model"]))
        ckpt.load_state_dict_strict(model, ckpt.read_state_dict_file(path), str(path))
        return model.eval()
    cdir = ckpt.resolve_checkpoint_dir(path)
    raw = ckpt.expect_model_type(cdir, "hierspeechpp_ttv")
    model = TextToVec.from_config(raw.get("model", {}))
    ckpt.load_state_dict_strict(model, ckpt.load_model_weights(cdir, "ttv"), str(cdir))
    return model.eval()
