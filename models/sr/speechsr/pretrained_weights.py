"""The SpeechSR releases ``echelon-models`` lists: the official 24 and 48 kHz weights, bundled in the package."""

from __future__ import annotations

from typing import List

from models.base.pretrained import Pretrained
from models.sr.speechsr.model import PRETRAINED, PRETRAINED_DIR
from utils.registry import register

OFFICIAL_REPOSITORY = "github.com/sh-lee-prml/HierSpeechpp"


@register("pretrained", "speechsr")
def bundled_releases() -> List[Pretrained]:
    entries = []
    for rate, (weights, _) in sorted(PRETRAINED.items()):
        path = PRETRAINED_DIR / weights
        where = str(path) if path.is_file() else \
            f"speechsr{rate // 1000}k/ of {OFFICIAL_REPOSITORY}, copied to {path} (it ships with Echelon)"
        entries.append(Pretrained(f"SpeechSR 16 -> {rate // 1000} kHz (official release)", "speech super-resolution",
                                  path.is_file(), where,
                                  f"echelon-infer --model_type speechsr --inputs a.wav --target_rate {rate} "
                                  "--output_dir out"))
    return entries
