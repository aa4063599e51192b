"""What the precision studies (``vits_int8_quality.py``, ``hierspeechpp_int8_quality.py``,
``vocoder_bf16_quality.py``) share: the interleaved, best-of-N timing with CPU time beside wall time, real speech
clips at SpeechSR's input rate, the band SNR, graph sizes, DNSMOS means and the markdown table they print."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from evaluation.base import EvalItem
from processors.audio import audio_info, load_audio

CLIPS = Path(__file__).resolve().parent.parent / "egs" / "mini" / "corpus" / "vctk"  # 16 kHz VCTK, transcribed
INPUT_RATE = 16000
BAND = 8000.0  # Hz: what SpeechSR adds, everything above the 16 kHz input's Nyquist frequency

Timing = Tuple[float, float]  # (wall s, CPU s: user + sys of this process)


def interleaved_best(runners: Mapping[str, Callable[[Any], Any]], inputs: Sequence[Any],
                     repeats: int) -> Tuple[Dict[str, Timing], Dict[str, List[Any]]]:
    """Every runner on every input, the runners taking turns on each input (so a change of the machine's load hits
    them alike), ``repeats`` passes after one untimed call of each on the first input (lazy loading, compilation,
    first allocations). Returns each runner's best pass as summed (wall, CPU) seconds and the last pass's
    outputs."""
    for run in runners.values():
        run(inputs[0])
    best: Dict[str, Timing] = {name: (np.inf, np.inf) for name in runners}
    outputs: Dict[str, List[Any]] = {name: [] for name in runners}
    for _ in range(repeats):
        totals = {name: [0.0, 0.0] for name in runners}
        outputs = {name: [] for name in runners}
        for item in inputs:
            for name, run in runners.items():
                wall, cpu = time.perf_counter(), time.process_time()
                outputs[name].append(run(item))
                totals[name][0] += time.perf_counter() - wall
                totals[name][1] += time.process_time() - cpu
        for name in runners:
            best[name] = min(best[name], (totals[name][0], totals[name][1]))
    return best, outputs


def megabytes(path: str | os.PathLike) -> float:
    return Path(path).stat().st_size / 2**20


def dnsmos_means(dnsmos, waves: Sequence[np.ndarray], rate: int) -> Dict[str, float]:
    """Mean DNSMOS ``ovrl`` / ``sig`` / ``bak`` of ``waves`` (:class:`evaluation.dnsmos.DNSMOS`, which scores at
    16 kHz: a band above 8 kHz is invisible to it; a silent output scores the scale minimum)."""
    scores = [dnsmos.score_one(EvalItem(str(i), wave, rate)) for i, wave in enumerate(waves)]
    return {key: float(np.mean([s[f"dnsmos_{key}"] for s in scores])) for key in ("ovrl", "sig", "bak")}


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A markdown table; floats with 3 decimals unless already formatted as strings."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")


class Clip:
    """The middle ``seconds`` of a recording at 16 kHz (SpeechSR's input), and where it lies in the recording."""

    def __init__(self, path: Path, seconds: float):
        wav = load_audio(path, INPUT_RATE)  # the project's resampling (soxr HQ) when the file is not at 16 kHz
        n = min(wav.size, int(seconds * INPUT_RATE))
        self.path, self.start, self.samples = path, (wav.size - n) // 2, n
        self.input = np.ascontiguousarray(wav[self.start:self.start + n], dtype=np.float32)

    def recording(self, rate: int) -> Optional[np.ndarray]:
        """The same stretch of the recording at ``rate``, when the file holds that band (None otherwise)."""
        if audio_info(self.path).samplerate < rate:
            return None
        wav = load_audio(self.path, rate)
        start = self.start * rate // INPUT_RATE
        return wav[start:start + self.samples * rate // INPUT_RATE]


def speech_clips(folder: Path, count: int, seconds: float) -> List[Clip]:
    """``count`` recordings spread over the sorted list of ``folder``'s .wav files."""
    paths = sorted(folder.rglob("*.wav"))
    if not paths:
        raise SystemExit(f"no .wav files under {folder}")
    return [Clip(paths[i * len(paths) // count], seconds) for i in range(min(count, len(paths)))]


def band_snr(ours: np.ndarray, reference: np.ndarray, rate: int, min_hz: float) -> float:
    """dB of ``reference``'s energy at and above ``min_hz`` over that of ``ours - reference`` there (whole-signal
    spectra: energy-weighted, unlike the LSD, which every quiet bin moves as much as a loud one)."""
    n = min(ours.size, reference.size)
    band = np.fft.rfftfreq(n, 1.0 / rate) >= min_hz
    ref, err = np.fft.rfft(reference[:n])[band], np.fft.rfft(ours[:n] - reference[:n])[band]
    return float(10 * np.log10(np.sum(np.abs(ref) ** 2) / max(np.sum(np.abs(err) ** 2), 1e-30)))
