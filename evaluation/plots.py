"""Diagnostic figures for the best and the worst utterance of each system (matplotlib, Agg backend).

Each figure stacks: the F0 contours of generated and reference audio on the reference's time axis (aligned
exactly as the F0 metric aligns them: DTW on mel-cepstra or trim), then the log-mel spectrograms of the
generated and the reference audio.  Without reference audio only the generated spectrogram is drawn.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from evaluation.alignment import align  # noqa: E402
from evaluation.base import EvalItem, Row  # noqa: E402
from evaluation.pitch import analyse, contour_pairs  # noqa: E402
from evaluation.spectral import LOG_MEL_HOP, log_mel  # noqa: E402

logger = logging.getLogger(__name__)

RANK_PREFERENCE = ("mcd", "wer", "f0_pearson", "sim_o", "sim_ref", "log_mel_l1")


def choose_rank_column(rows: Sequence[Row], higher_is_better: Mapping[str, bool], requested: Optional[str]) -> Optional[str]:
    """The column that defines best/worst: ``requested`` or the first of :data:`RANK_PREFERENCE` with values."""
    def has_values(column: str) -> bool:
        return any(isinstance(r.get(column), float) and math.isfinite(r[column]) for r in rows)

    if requested is not None:
        if requested not in higher_is_better:
            raise ValueError(f"--rank-by {requested!r} is not a reported column ({', '.join(higher_is_better)})")
        return requested if has_values(requested) else None
    return next((c for c in RANK_PREFERENCE if c in higher_is_better and has_values(c)), None)


def best_and_worst(rows: Sequence[Row], column: str, higher_is_better: bool) -> Dict[str, str]:
    """``{"best": id, "worst": id}`` by ``column`` (NaN rows ignored)."""
    scored = [(float(r[column]), str(r["id"])) for r in rows
              if isinstance(r.get(column), float) and math.isfinite(r[column])]
    scored.sort(key=lambda pair: pair[0], reverse=higher_is_better)
    return {"best": scored[0][1], "worst": scored[-1][1]} if scored else {}


def plot_item(item: EvalItem, title: str, path: Path, f0_method: str = "yaapt", alignment: str = "dtw") -> Path:
    """Write the F0-overlay + mel-spectrogram figure of one utterance to ``path`` (PNG)."""
    has_ref = item.reference is not None
    panels = 3 if has_ref else 1
    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.6 * panels), squeeze=False)
    axes = axes[:, 0]
    row = 0
    if has_ref:
        ax = axes[row]
        row += 1
        if item.generated_is_silent:
            ax.text(0.5, 0.5, "generated audio is silent: no F0", ha="center", va="center", transform=ax.transAxes)
        else:
            gen = analyse(item.generated, item.generated_sr, f0_method)
            ref = analyse(item.reference, item.reference_sr, f0_method)  # type: ignore[arg-type]
            contours = contour_pairs(gen, ref, align(gen.mcep[:, 1:], ref.mcep[:, 1:], alignment))
            if contours is not None:
                ax.plot(contours["time"], contours["reference"], label="reference", lw=1.5)
                ax.plot(contours["time"], contours["generated"], label="generated", lw=1.0)
                ax.legend(loc="upper right")
        ax.set_ylabel("F0 (Hz)")
        ax.set_xlabel(f"reference time (s), {alignment} alignment")
    sources = [("generated", item.generated, item.generated_sr)]
    if has_ref:
        sources.append(("reference", item.reference, item.reference_sr))  # type: ignore[arg-type]
    mels = [log_mel(wav if wav.size else np.zeros(sr // 10, dtype=np.float32), sr) for _, wav, sr in sources]
    top = max(float(mel.max()) for mel in mels)  # one colour scale for both, floor = ln(1e-5)
    for (name, _, sr), mel in zip(sources, mels):
        ax = axes[row]
        row += 1
        ax.imshow(mel.T, origin="lower", aspect="auto", interpolation="none", vmin=float(np.log(1e-5)), vmax=top,
                  extent=(0.0, mel.shape[0] * LOG_MEL_HOP / sr, 0, mel.shape[1]))
        ax.set_ylabel(f"{name}\nmel bin")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)


def save_figure(fig: "plt.Figure", path: Path, dpi: int) -> Path:
    """Lay out, write ``fig`` to ``path`` (PNG, parent folders created) and free it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_best_and_worst(
    items_by_id: Mapping[str, EvalItem],
    rows: Sequence[Row],
    column: str,
    higher_is_better: bool,
    out_dir: Path,
    f0_method: str = "yaapt",
    alignment: str = "dtw",
) -> List[Path]:
    """One figure each for the best and the worst utterance by ``column``; returns the written paths."""
    written = []
    values = {str(r["id"]): r.get(column) for r in rows}
    for kind, utt_id in best_and_worst(rows, column, higher_is_better).items():
        title = f"{kind} by {column}: {utt_id} ({column} = {values[utt_id]:.3f})"
        path = out_dir / f"{kind}_{utt_id}.png"
        written.append(plot_item(items_by_id[utt_id], title, path, f0_method, alignment))
    return written
