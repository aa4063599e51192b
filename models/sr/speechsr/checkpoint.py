"""Loading a SpeechSR checkpoint: an official ``G_*.pth`` (``config.json`` beside it) or an Echelon directory.

Below both the inference wrapper (``inference.py``) and the ONNX exporter (``onnx_export.py``), which each
load a model from a checkpoint; the bundled releases load with :meth:`SpeechSR.from_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Optional

from models.base import checkpoint as ckpt
from models.sr.speechsr.model import SpeechSR


class LoadedCheckpoint(NamedTuple):
    model: SpeechSR  # in eval mode, on the CPU
    config: Optional[dict]  # the Echelon experiment config; None for an official file
    source: Path  # the ``.pth`` file or the resolved checkpoint directory (where ONNX graphs are cached)


def load_checkpoint(ckpt_dir: str | Path) -> LoadedCheckpoint:
    """An official ``G_*.pth`` file (its rate read from ``config.json`` beside it) or an Echelon checkpoint
    directory, loaded strictly."""
    path = Path(ckpt_dir)
    if path.is_file():
        # official layout: speechsr48k/G_100000.pth next to speechsr48k/config.json (the rate is only there)
        config = path.parent / "config.json"
        if not config.is_file():
            raise ckpt.CheckpointNotFoundError(f"official SpeechSR checkpoint {path} needs its config.json "
                                               "alongside (it holds the sampling rate)")
        rate = int(json.loads(config.read_text(encoding="utf-8"))["data"]["sampling_rate"])
        return LoadedCheckpoint(SpeechSR.from_pretrained(rate, checkpoint=path, config=config), None, path)
    cdir = ckpt.resolve_checkpoint_dir(path)
    raw = ckpt.expect_model_type(cdir, "speechsr")
    model = SpeechSR.from_config(raw.get("model", {}))
    ckpt.load_state_dict_strict(model, ckpt.load_model_weights(cdir, "generator"), str(cdir))
    return LoadedCheckpoint(model.eval(), raw, cdir)
