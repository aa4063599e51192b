"""DNSMOS P.835 (Reddy et al., ICASSP 2022): predicted signal, background and overall quality, no reference.

The ONNX models ship in the PyPI package ``speechmos`` (MIT, Microsoft's DNS-Challenge models) and run offline
with onnxruntime.  Each generated utterance is resampled to 16 kHz and clipped to [-1, 1], then scored on 9.01 s
windows every second (shorter clips are repeated to 9.01 s, as the DNS-Challenge script does); the per-window
scores, mapped through the P.835 polynomials, are averaged.

Measured OVRL (1-5, higher is better): white noise 1.11, speech at 0 dB SNR 1.63, espeak-ng 2.43, LibriSpeech
test-other 2.86, VCTK 3.16, Piper joe 3.23, LJSpeech 3.25.  It rates noise and distortion, not naturalness.
Silent outputs get the scale minimum, 1.0, on every column (worst, not best).
"""

from __future__ import annotations

from importlib import util as import_util
from pathlib import Path
from typing import List, Sequence

import numpy as np

from evaluation.base import EvalItem, Metric, Row, at_rate
from evaluation.hf_loading import ModelUnavailableError
from utils.registry import register

DNSMOS_SAMPLE_RATE = 16000
SCALE_MIN = 1.0


def _speechmos_models() -> Path:
    spec = import_util.find_spec("speechmos")
    if spec is None or spec.origin is None:
        raise ModelUnavailableError("dnsmos: the package speechmos is not installed; pip install -r requirements.txt")
    return Path(spec.origin).parent / "dnsmos_models"


@register("metric", "dnsmos")
class DNSMOS(Metric):
    """``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl`` of the generated audio (P.835, non-personalised)."""

    name = "dnsmos"
    columns = {"dnsmos_sig": True, "dnsmos_bak": True, "dnsmos_ovrl": True}

    def __init__(self) -> None:
        from speechmos.dnsmos import DNSMOS as SpeechMOSModel

        models = _speechmos_models()
        self.model = SpeechMOSModel(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))

    def score(self, items: Sequence[EvalItem]) -> List[Row]:
        return [self.score_one(item) for item in items]

    def score_one(self, item: EvalItem) -> Row:
        if item.generated_is_silent:
            return {column: SCALE_MIN for column in self.columns}
        return self.score_wave(item.generated, item.generated_sr)

    def score_wave(self, wav: np.ndarray, sample_rate: int) -> Row:
        """Scores of one mono waveform ``(T,)`` at ``sample_rate``."""
        audio = np.clip(at_rate(np.asarray(wav, dtype=np.float32), sample_rate, DNSMOS_SAMPLE_RATE), -1.0, 1.0)
        result = self.model(audio.astype(np.float32), DNSMOS_SAMPLE_RATE, False)
        return {"dnsmos_sig": float(result["sig_mos"]), "dnsmos_bak": float(result["bak_mos"]),
                "dnsmos_ovrl": float(result["ovrl_mos"])}
