#!/usr/bin/env python3
"""One markdown table over the fine-tuning runs of the recipe: a row per reader (the folder holding its
``results.json``, written by ``echelon-finetune``), then SIM against minutes of data for the LJSpeech subsets.

    results_table.py EXP/*/results.json [--plot EXP/sim_vs_minutes.png] > EXP/RESULTS.md

Each row: minutes of usable speech, transcripts given / by Whisper, the CPU minutes of the best checkpoint,
SIM, WER and DNSMOS of the base voice -> the best checkpoint, the reader's own recordings scored the same way
(the ceiling), speaking rates, and how many files or pieces the data preparation skipped. The PNG (matplotlib,
Agg) is linked by its file name: keep it beside the markdown. Errors: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

#: readers on the curve by default: the whole LJSpeech reader and its first-N-seconds subsets
CURVE_READERS = re.compile(r"^ljspeech(_\d+(s|min))?$")
MISSING = "—"

Row = Dict[str, Any]


class TableError(Exception):
    """A results file cannot be read (the message is the one-line error)."""


def load_run(path: Path) -> Row:
    """results.json -> {reader, data, base, reader_scores, best, notes}; best is None before any evaluation."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TableError(f"{path}: no such file (has stage finetune run?)") from None
    except (OSError, ValueError) as err:
        raise TableError(f"{path}: not a readable results.json ({' '.join(str(err).split())})") from None
    if not isinstance(saved, dict):
        raise TableError(f"{path}: not a results.json (a JSON object is expected)")
    checkpoints = saved.get("checkpoints") or []
    best = next((c for c in checkpoints if c.get("step") == saved.get("best_step")), None)
    return {"reader": path.parent.name, "data": saved.get("data") or {}, "base": saved.get("base"),
            "reader_scores": saved.get("reader"), "best": best, "notes": saved.get("notes") or {}}


FORMATS = {"sim": "{:.3f}", "wer": "{:.1f} %", "mos": "{:.2f}", "rate": "{:.1f}", "cpu": "{:.1f}", "min": "{:.2f}",
           "db": "{:.1f}"}


def fmt(number: Optional[float], kind: str) -> str:
    """A number as the tables print it (WER as a percentage); a missing one as a dash."""
    if number is None:
        return MISSING
    return FORMATS[kind].format(100 * float(number) if kind == "wer" else float(number))


def value(scores: Optional[Row], key: str, kind: str) -> str:
    return fmt(scores.get(key) if scores else None, kind)


def arrow(run: Row, key: str, kind: str) -> str:
    return f"{value(run['base'], key, kind)} → {value(run['best'], key, kind)}"


def minutes_of_data(run: Row) -> Optional[float]:
    seconds = run["data"].get("seconds")
    return None if seconds is None else float(seconds) / 60


def reader_row(run: Row) -> str:
    data, best, own = run["data"], run["best"], run["reader_scores"]
    transcripts = data.get("transcripts") or {}
    given = f"{transcripts.get('given', MISSING)} / {transcripts.get('asr', MISSING)}"
    cpu = MISSING if best is None else f"{value(best, 'cpu_minutes', 'cpu')} (step {best.get('step')})"
    ceiling = " / ".join(value(own, key, kind) for key, kind in (("sim", "sim"), ("wer", "wer"), ("dnsmos", "mos")))
    rates = " / ".join(value(scores, "rate", "rate") for scores in (run["base"], best, own))
    cells = [run["reader"], fmt(minutes_of_data(run), "min"), given, cpu, arrow(run, "sim", "sim"),
             arrow(run, "wer", "wer"), arrow(run, "dnsmos", "mos"), ceiling, rates, arrow(run, "buzz_db", "db"),
             str(len(data.get("skipped", [])))]
    return "| " + " | ".join(cells) + " |"


def curve_runs(runs: List[Row], names: Optional[List[str]]) -> List[Row]:
    """The runs on the SIM-against-minutes curve (with data measured), fewest minutes first."""
    chosen = [r for r in runs if (r["reader"] in names if names is not None else CURVE_READERS.match(r["reader"]))]
    return sorted((r for r in chosen if minutes_of_data(r) is not None), key=minutes_of_data)


def curve_table(runs: List[Row]) -> List[str]:
    lines = ["| reader | min of data | SIM base | SIM best | recordings SIM | WER best | CPU min (best) |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['reader']} | {fmt(minutes_of_data(run), 'min')} | {value(run['base'], 'sim', 'sim')} | "
                     f"{value(run['best'], 'sim', 'sim')} | {value(run['reader_scores'], 'sim', 'sim')} | "
                     f"{value(run['best'], 'wer', 'wer')} | {value(run['best'], 'cpu_minutes', 'cpu')} |")
    return lines


def markdown(runs: List[Row], curve: List[Row], plot: Optional[Path]) -> str:
    bases = sorted({str(r["notes"].get("base voice")) for r in runs if r["notes"].get("base voice")})
    lines = ["# Fine-tuning a voice on real readers (egs/tts/finetune)", "",
             f"Base voice: {', '.join(f'`{b}`' for b in bases) or MISSING}. One `echelon-finetune` run per reader.",
             "", "| reader | min of data | transcripts given / Whisper | CPU min (best) | SIM base → best | "
             "WER base → best | DNSMOS base → best | recordings SIM / WER / DNSMOS | phonemes/s base / best / "
             "recordings | buzz dB base → best | skipped |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [reader_row(run) for run in runs]
    lines += ["", "min of data: usable speech after preparation. SIM: resemblyzer cosine to the mean embedding of "
              "the reader's recordings; WER: Whisper on held-out sentences; DNSMOS: overall. Recordings: the "
              "reader's own clips scored the same way (the ceiling). Buzz: the decoder's frame-rate lines over "
              "their surroundings (recordings 1-4 dB; 6 and up is heard as a hum; a dash: a run from before it was "
              "measured). Best: the checkpoint echelon-finetune kept (highest SIM within its WER limit, a voice "
              "without the buzz first); CPU min: "
              "training CPU time up to it. Per-run details: "
              "`<reader>/results.md`."]
    if curve:
        lines += ["", "## SIM against minutes of data", ""] + curve_table(curve)
        if plot is not None:
            lines += ["", f"![SIM against minutes of data]({plot.name})"]
    return "\n".join(lines) + "\n"


def plot_curve(curve: List[Row], path: Path) -> None:
    """Best and base SIM against minutes of data; the recordings' SIM (the ceiling) dotted."""
    from evaluation.plots import plt, save_figure  # matplotlib with the Agg backend

    minutes = [minutes_of_data(r) for r in curve]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(minutes, [r["best"]["sim"] if r["best"] else float("nan") for r in curve], "o-", label="fine-tuned")
    ax.plot(minutes, [r["base"]["sim"] if r["base"] else float("nan") for r in curve], "s--", label="base voice")
    ax.plot(minutes, [r["reader_scores"]["sim"] if r["reader_scores"] else float("nan") for r in curve], ":",
            color="grey", label="reader's recordings")
    for run, x in zip(curve, minutes):
        if run["best"]:
            ax.annotate(run["reader"], (x, run["best"]["sim"]), fontsize=7, textcoords="offset points",
                        xytext=(3, -10))
    ax.set_xlabel("minutes of data")
    ax.set_ylabel("SIM")
    ax.set_ylim(0, 1)
    ax.set_title("Speaker similarity against minutes of data")
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path, dpi=110)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="EXP/<reader>/results.json files (rows in this order)")
    parser.add_argument("--plot", type=Path, help="write the SIM-against-minutes curve to this PNG")
    parser.add_argument("--curve", help="space-separated readers on the curve [ljspeech and ljspeech_<N>s|min]")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(path) for path in args.results]  # rows in the order given
        curve = curve_runs(runs, args.curve.split() if args.curve is not None else None)
        plot = args.plot if curve else None
        if plot is not None:
            plot_curve(curve, plot)
        sys.stdout.write(markdown(runs, curve, plot))
    except (TableError, OSError) as err:
        print(f"results_table.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
