"""Build a VALL-E from a fixture file's stored ``config`` (every size from the fixture, never hard-coded)."""

from __future__ import annotations

from typing import Any, Dict

from models.tts.valle.model import Valle


def model_from_fixture(fixture: Dict[str, Any], prefix_mode: int) -> Valle:
    c = fixture["config"]
    if c.get("add_prenet"):
        raise AssertionError(f"fixture config outside what the tests cover: {c}")
    keys = ("d_model", "nhead", "num_layers", "num_quantizers", "num_text_tokens", "num_audio_tokens", "norm_first",
            "share_embedding", "prepend_bos", "nar_scale_factor")
    model = Valle.from_config({**{k: c[k] for k in keys}, "prefix_mode": prefix_mode})
    model.load_state_dict(fixture["state_dict"], strict=True)
    return model.eval()
