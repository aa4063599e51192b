"""Build a VALL-E from a fixture file's stored ``config`` (every size from the fixture, never hard-coded)."""

from __future__ import annotations

from typing import Any, Dict

from models.tts.valle.model import Valle


def model_from_fixture(fixture: Dict[str, Any], prefix_mode: int) -> Valle:
    c = fixture["config"]
    if c.get("add_prenet"):
        raise AssertionError(f"fixture config outside what the tests cover: {c}")
    model = Valle(
        c["d_model"], c["nhead"], c["num_layers"], c["num_quantizers"], c["num_text_tokens"], c["num_audio_tokens"],
        norm_first=c["norm_first"], share_embedding=c["share_embedding"], prepend_bos=c["prepend_bos"],
        prefix_mode=prefix_mode, nar_scale_factor=c["nar_scale_factor"],
    )  # fmt: skip
    model.load_state_dict(fixture["state_dict"], strict=True)
    return model.eval()
