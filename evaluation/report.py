"""Write the evaluation outputs: per-utterance CSV, summary JSON and a Markdown table (mean ± 95 % CI).

All files are written atomically (:mod:`utils.io`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from evaluation.base import Metric, Row
from evaluation.stats import bootstrap_ci95, mean_ci95
from utils.io import atomic_write_text

_ID_COLUMNS = ("system", "id", "speaker")
_TEXT_COLUMNS = ("reference_text", "hypothesis")
_LABELS = {
    "wer": "WER %", "cer": "CER %", "wer_corpus": "WER (corpus) %", "cer_corpus": "CER (corpus) %",
    "sim_o": "SIM-O", "sim_ref": "SIM-ref", "f0_pearson": "F0 r", "f0_rmse_hz": "F0 RMSE Hz",
    "f0_rmse_cents": "F0 RMSE cents", "vuv_f1": "V/UV F1", "vuv_precision": "V/UV P", "vuv_recall": "V/UV R",
    "vuv_f1_pooled": "V/UV F1 (pooled)", "mcd": "MCD dB", "log_mel_l1": "log-mel L1", "mrstft": "MR-STFT",
    "stoi": "STOI", "pesq": "PESQ-WB",
    "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL",
}
PERCENT_COLUMNS = {"wer", "cer", "wer_corpus", "cer_corpus"}  # stored as fractions, shown in %


def column_label(column: str) -> str:
    """Human name of a metric column (``mcd`` -> ``MCD dB``); unknown columns keep their name."""
    return _LABELS.get(column, column)


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`utils.io.atomic_write_text`); returns it."""
    return atomic_write_text(path, text)


def csv_columns(rows: Sequence[Row]) -> List[str]:
    """Id columns, then metric columns in first-seen order, then the transcripts."""
    seen: List[str] = []
    for row in rows:
        for key in row:
            if key not in seen and key not in _ID_COLUMNS and key not in _TEXT_COLUMNS:
                seen.append(key)
    texts = [c for c in _TEXT_COLUMNS if any(c in row for row in rows)]
    return list(_ID_COLUMNS) + seen + texts


def write_csv(path: Path, rows: Sequence[Row]) -> Path:
    """Per-utterance CSV (NaN written as empty cells)."""
    columns = csv_columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return write_atomic(path, buffer.getvalue())


TEXT_COLUMNS = {"system", "id", "speaker", *_TEXT_COLUMNS}  # never read back as numbers


def read_csv(path: Path) -> Dict[str, List[Row]]:
    """A per-utterance CSV written by :func:`write_csv` -> ``{system: [row, ...]}``; metric cells as floats
    (empty = NaN), text columns as written."""
    by_system: Dict[str, List[Row]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: Row = {}
            for key, value in raw.items():
                if key in TEXT_COLUMNS:
                    row[key] = value
                    continue
                try:
                    row[key] = float(value) if value not in ("", None) else math.nan
                except ValueError:
                    row[key] = value
            by_system.setdefault(row["system"], []).append(row)
    return by_system


def summarize(rows_by_system: Mapping[str, Sequence[Row]], metrics: Mapping[str, Metric]) -> Dict[str, Any]:
    """``{system: {"n_items", "metrics": {col: stats}, "corpus": {col: {value, ci95_low, ci95_high}}}}``."""
    out: Dict[str, Any] = {}
    for system, rows in rows_by_system.items():
        per_metric: Dict[str, Any] = {}
        corpus: Dict[str, Any] = {}
        for metric in metrics.values():
            for column, higher in metric.columns.items():
                stats = mean_ci95([row.get(column, math.nan) for row in rows])
                per_metric[column] = {**stats, "higher_is_better": higher}
            values = metric.corpus(rows)
            if values:
                intervals = bootstrap_ci95(rows, metric.corpus)
                for column, value in values.items():
                    low, high = intervals.get(column, (math.nan, math.nan))
                    corpus[column] = {"value": value, "ci95_low": low, "ci95_high": high,
                                      "higher_is_better": metric.corpus_columns().get(column, False)}
        out[system] = {"n_items": len(rows), "metrics": per_metric, "corpus": corpus}
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    """JSON with NaN/inf written as ``null`` (strict JSON)."""
    return write_atomic(path, json.dumps(_json_safe(dict(payload)), indent=2, sort_keys=False) + "\n")


def _cell(stats: Mapping[str, Any], column: str) -> str:
    scale = 100.0 if column in PERCENT_COLUMNS else 1.0
    mean = stats.get("mean", math.nan)
    if mean is None or not math.isfinite(mean):
        return "n/a"
    ci = stats.get("ci95", math.nan)
    text = f"{mean * scale:.2f}"
    if ci is not None and math.isfinite(ci):
        text += f" ± {ci * scale:.2f}"
    if stats.get("n_missing"):
        text += f" (n={stats['n']})"
    return text


def _corpus_cell(stats: Mapping[str, Any], column: str) -> str:
    scale = 100.0 if column in PERCENT_COLUMNS else 1.0
    value = stats.get("value", math.nan)
    if value is None or not math.isfinite(value):
        return "n/a"
    low, high = stats.get("ci95_low"), stats.get("ci95_high")
    text = f"{value * scale:.2f}"
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        text += f" [{low * scale:.2f}, {high * scale:.2f}]"
    return text


TABLE_NOTES = (
    "Per-utterance columns: mean ± 95 % CI half-width (Student t); `(n=k)` when some utterances had no value.",
    "Corpus columns: pooled value [95 % bootstrap interval over utterances, 1000 resamples].",
    "WER/CER in %, after English normalisation; MCD in dB (c1..cM, DTW); F0 over frames voiced in both.",
)


def summary_cells(summary: Mapping[str, Any]) -> Tuple[List[str], List[List[str]]]:
    """Header and one row of formatted cells per system: corpus values (with bootstrap 95 % interval), then
    per-utterance mean ± 95 % CI. What :func:`markdown_table` shows; the benchmark's HTML page reuses it."""
    systems = list(summary)
    corpus_cols: List[str] = []
    metric_cols: List[str] = []
    for system in systems:
        for col in summary[system]["corpus"]:
            if col not in corpus_cols:
                corpus_cols.append(col)
        for col in summary[system]["metrics"]:
            if col not in metric_cols:
                metric_cols.append(col)

    def label(col: str, higher: bool) -> str:
        return f"{column_label(col)} {'↑' if higher else '↓'}"

    first = summary[systems[0]] if systems else {"corpus": {}, "metrics": {}}
    header = ["system", "n"]
    header += [label(c, first["corpus"].get(c, {}).get("higher_is_better", False)) for c in corpus_cols]
    header += [label(c, first["metrics"].get(c, {}).get("higher_is_better", False)) for c in metric_cols]
    rows = []
    for system in systems:
        entry = summary[system]
        cells = [system, str(entry["n_items"])]
        cells += [_corpus_cell(entry["corpus"].get(c, {}), c) for c in corpus_cols]
        cells += [_cell(entry["metrics"].get(c, {}), c) for c in metric_cols]
        rows.append(cells)
    return header, rows


def markdown_table(summary: Mapping[str, Any]) -> str:
    """One row per system: corpus values (with bootstrap 95 % interval), then per-utterance mean ± 95 % CI."""
    header, rows = summary_cells(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines + ["", *TABLE_NOTES]) + "\n"
