"""Benchmark report: ``report.md`` and a static ``report.html`` that opens from disk (no server, no network).

The page has, per task, the results table (corpus WER with its bootstrap interval, per-item means ± 95 % CI,
RTF wall/CPU), the metric distributions of every system, each system's best and worst item (F0 overlay and
spectrograms, from the evaluation) and an audio player per item and system. Images and audio are referenced by
paths relative to the page, so the report folder can be moved or archived as a whole. The page has no
scripts and no external assets (inline CSS only).
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote

from evaluation.benchmark.figures import task_distributions
from evaluation.benchmark.results import GROUND_TRUTH, BenchmarkReport, SystemEntry, TaskReport
from evaluation.report import PERCENT_COLUMNS, TABLE_NOTES, column_label, summary_cells, write_atomic
from utils.wording import plural

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.55em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.skipped { color: #a33; }
figure { display: inline-block; margin: 0.4em 1em 0.8em 0; }
figure img { max-width: 680px; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
audio { width: 230px; height: 32px; }
.note { color: #555; font-size: 0.9em; }
.caution { color: #8a5a00; font-size: 0.9em; }
.asr { font-size: 0.8em; color: #444; max-width: 230px; }
"""

SMALL_N = 10  # below this many items a 95 % interval is too wide (and too unstable) to rank systems on
# the columns a leaderboard line ranks on, when the task has them (corpus values before per-item means)
LEADERBOARD_COLUMNS = ("wer_corpus", "sim_o", "dnsmos_ovrl", "mcd")  # sim_o: vs the prompt (SIM-O)


def _format_count(parameters: Optional[int]) -> str:
    return "n/a" if parameters is None else f"{parameters / 1e6:.2f} M"


def _format_float(value: Optional[float], digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _system_rows(systems: Sequence[SystemEntry]) -> Tuple[List[str], List[List[str]]]:
    header = ["system", "pipeline", "status", "tasks", "parameters", "peak memory (MB)"]
    rows = []
    for s in systems:
        status = "ran" if s.available else f"skipped: {s.reason}"
        rows.append([s.name, s.pipeline, status, ", ".join(s.tasks) or "-", _format_count(s.parameters),
                     _format_float(s.peak_memory_mb, 0)])
    return header, rows


def task_table(task: TaskReport) -> Tuple[List[str], List[List[str]]]:
    """The evaluation table of the task (same cells as echelon-evaluate's summary.md) plus RTF columns."""
    header, rows = summary_cells(task.summary)
    header = header + ["RTF wall ↓", "RTF CPU ↓"]
    for cells in rows:
        eff = task.efficiency.get(cells[0])
        cells += [_format_float(eff.rtf_wall if eff else None), _format_float(eff.rtf_cpu if eff else None)]
    return header, rows


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(map(clean, header)) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(map(clean, r)) + " |" for r in rows]


def _stats(entry: Mapping, column: str) -> Mapping:
    return entry.get("corpus", {}).get(column) or entry.get("metrics", {}).get(column) or {}


def _value(entry: Mapping, column: str) -> float:
    stats = _stats(entry, column)
    value = stats.get("value", stats.get("mean", math.nan))
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def _ranking(task: TaskReport, column: str) -> Optional[str]:
    """``WER ↓: a 3.1 > b 7.4 (recordings 2.0)`` over the task's systems, or None when none has the column."""
    values = {s: _value(e, column) for s, e in task.summary.items() if s != GROUND_TRUTH}
    values = {s: v for s, v in values.items() if math.isfinite(v)}
    if not values:
        return None
    first = next(e for s, e in task.summary.items() if s in values)
    higher = bool(_stats(first, column).get("higher_is_better", task.directions.get(column, False)))
    scale = 100.0 if column in PERCENT_COLUMNS else 1.0
    order = sorted(values, key=values.__getitem__, reverse=higher)
    text = f"{column_label(column)} {'↑' if higher else '↓'}: " + " > ".join(f"{s} {scale * values[s]:.3g}" for s in order)
    truth = _value(task.summary.get(GROUND_TRUTH, {}), column)
    return text + (f" (recordings {scale * truth:.3g})" if math.isfinite(truth) else "")


def leaderboard_lines(report: BenchmarkReport) -> List[str]:
    """One line per task: its systems ranked on each main column (the recordings shown apart, never ranked)."""
    lines = []
    for task in report.tasks:
        rankings = [r for r in (_ranking(task, c) for c in LEADERBOARD_COLUMNS) if r]
        if rankings:
            n = min((int(e.get("n_items", 0)) for e in task.summary.values()), default=0)
            lines.append(f"{task.title} (n = {n}): " + "; ".join(rankings))
    return lines


def ci_caution(task: TaskReport) -> Optional[str]:
    """A caution when the items are too few for the 95 % intervals to separate systems."""
    n = min((int(e.get("n_items", 0)) for e in task.summary.values()), default=0)
    if 0 < n < SMALL_N:
        return (f"Caution: only n = {plural(n, 'item')} per system; 95 % intervals this wide (or unstable) cannot tell "
                "systems apart: read the numbers as a smoke test, not a ranking.")
    return None


def _transcripts(task: TaskReport) -> Dict[Tuple[str, str], str]:
    """(system, id) -> what the ASR heard (the WER metric's hypothesis), when the task ran it."""
    return {(system, str(r["id"])): str(r["hypothesis"]) for system, rows in task.rows.items() for r in rows
            if isinstance(r.get("hypothesis"), str)}


class _Page:
    """Collects HTML fragments; every text is escaped and every file path made relative to the page."""

    def __init__(self, page_dir: Path) -> None:
        self.page_dir = page_dir
        self.parts: List[str] = []

    def href(self, path: Path) -> str:
        return quote(Path(os.path.relpath(Path(path).resolve(), self.page_dir.resolve())).as_posix())

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def text(self, tag: str, content: str, **attrs: str) -> None:
        extra = "".join(f' {k.rstrip("_")}="{html.escape(v)}"' for k, v in attrs.items())
        self.add(f"<{tag}{extra}>{html.escape(content)}</{tag}>")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[str]], table_id: str, numeric_from: int = 1) -> None:
        out = [f'<table id="{html.escape(table_id)}"><thead><tr>']
        out += [f"<th>{html.escape(h)}</th>" for h in header]
        out.append("</tr></thead><tbody>")
        for cells in rows:
            out.append("<tr>" + "".join(
                f'<td{" class=num" if i >= numeric_from else ""}>{html.escape(str(c))}</td>' for i, c in enumerate(cells)
            ) + "</tr>")
        self.add("".join(out) + "</tbody></table>")

    def figure(self, path: Path, caption: str) -> None:
        self.add(f'<figure><img src="{self.href(path)}" alt="{html.escape(caption)}">'
                 f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def audio(self, path: Optional[Path | str], transcript: Optional[str] = None) -> str:
        if path is None:
            return "<td>-</td>"
        heard = f'<div class="asr">ASR: {html.escape(transcript)}</div>' if transcript is not None else ""
        return f'<td><audio controls preload="metadata" src="{self.href(path)}"></audio>{heard}</td>'


def _html_task(page: _Page, task: TaskReport, distributions: Mapping[str, Path], max_items: int) -> None:
    page.add(f'<section id="task-{html.escape(task.task)}">')
    page.text("h2", task.title)
    page.text("p", task.description)
    header, rows = task_table(task)
    page.table(header, rows, f"results-{task.task}")
    for note in TABLE_NOTES:
        page.text("p", note, class_="note")
    caution = ci_caution(task)
    if caution:
        page.text("p", caution, class_="caution")
    if task.excluded:
        listed = ", ".join(f"{i} ({why})" for i, why in sorted(task.excluded.items()))
        page.text("p", f"Left out of the comparison (not produced by every system): {listed}", class_="note")
    if distributions:
        page.text("h3", "Metric distributions")
        for column, path in distributions.items():
            page.figure(path, f"{column_label(column)} per system")
    plots = {s: p for s, p in task.item_plots.items() if s != GROUND_TRUTH and p}  # recordings are not ranked
    if plots:
        with_f0 = any(item.reference for item in task.items)  # the F0 panel needs a reference recording
        page.text("h3", "Best and worst items" + (" (F0 overlay, mel spectrograms)" if with_f0 else
                                                  " (mel spectrograms)"))
        for system, paths in plots.items():
            for path in paths:
                page.figure(path, f"{system}: {Path(path).stem}")
    _html_audio_table(page, task, max_items)
    page.add("</section>")


def _html_audio_table(page: _Page, task: TaskReport, max_items: int) -> None:
    items = list(task.items)[:max_items]
    if not items:
        return
    page.text("h3", f"Listen ({len(items)} of {plural(len(task.items), 'item')})")
    inputs = [("reference", "reference"), ("prompt", "prompt"), ("source", "source")]
    used = [(label, attr) for label, attr in inputs if any(getattr(i, attr) is not None for i in items)]
    systems = task.systems or sorted({s for i in items for s in i.outputs})
    if all(i.reference == i.source for i in items) or GROUND_TRUTH in systems:  # one player per recording
        used = [(label, attr) for label, attr in used if attr != "reference"]
    heard = _transcripts(task)
    out = [f'<table id="audio-{html.escape(task.task)}"><thead><tr><th>item</th><th>text</th>']
    out += [f"<th>{html.escape(label)}</th>" for label, _ in used] + [f"<th>{html.escape(s)}</th>" for s in systems]
    out.append("</tr></thead><tbody>")
    for item in items:
        out.append(f"<tr><td>{html.escape(item.id)}</td><td>{html.escape(item.text)}</td>")
        out += [page.audio(getattr(item, attr)) for _, attr in used]
        out += [page.audio(item.outputs.get(s), heard.get((s, item.id))) for s in systems]
        out.append("</tr>")
    page.add("".join(out) + "</tbody></table>")


def render_html(report: BenchmarkReport, page_dir: Path, distributions: Mapping[str, Mapping[str, Path]],
                max_items: int = 50) -> str:
    page = _Page(page_dir)
    page.add(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
             f"<style>{CSS}</style></head><body>")
    page.text("h1", report.title)
    if report.created:
        page.text("p", f"Created {report.created}", class_="note")
    board = leaderboard_lines(report)
    if board:
        page.text("h2", "Leaderboard")
        page.add('<ul id="leaderboard">' + "".join(f"<li>{html.escape(line)}</li>" for line in board) + "</ul>")
    page.text("h2", "Protocol")
    page.add("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in report.protocol) + "</ul>")
    page.text("h2", "Systems")
    header, rows = _system_rows(report.systems)
    page.table(header, rows, "systems", numeric_from=4)
    for task in report.tasks:
        _html_task(page, task, distributions.get(task.task, {}), max_items)
    page.add("</body></html>\n")
    return "\n".join(page.parts)


def render_markdown(report: BenchmarkReport, page_dir: Path, distributions: Mapping[str, Mapping[str, Path]]) -> str:
    def rel(path: Path) -> str:
        return quote(Path(os.path.relpath(Path(path).resolve(), page_dir.resolve())).as_posix())

    lines = [f"# {report.title}", ""]
    if report.created:
        lines += [f"Created {report.created}", ""]
    board = leaderboard_lines(report)
    if board:
        lines += ["## Leaderboard", ""] + [f"* {line}" for line in board] + [""]
    lines += ["## Protocol", ""] + [f"* {line}" for line in report.protocol] + ["", "## Systems", ""]
    lines += _md_table(*_system_rows(report.systems)) + [""]
    for task in report.tasks:
        lines += [f"## {task.title}", "", task.description, ""]
        lines += _md_table(*task_table(task)) + [""] + list(TABLE_NOTES) + [""]
        caution = ci_caution(task)
        if caution:
            lines += [f"**{caution}**", ""]
        if task.excluded:
            lines += ["Left out of the comparison: " + ", ".join(f"{i} ({w})" for i, w in sorted(task.excluded.items())), ""]
        figures = [(column_label(c), p) for c, p in distributions.get(task.task, {}).items()]
        figures += [(f"{s}: {Path(p).stem}", p) for s, paths in task.item_plots.items() if s != GROUND_TRUTH
                    for p in paths]
        lines += [f"![{label}]({rel(path)})" for label, path in figures] + [""]
    lines.append("Audio players: report.html.")
    return "\n".join(lines) + "\n"


def write_report(report: BenchmarkReport, out_dir: Path, max_items: int = 50) -> Dict[str, Path]:
    """Write figures, ``report.md`` and ``report.html`` into ``out_dir``; returns their paths by kind."""
    out_dir = Path(out_dir)
    distributions = {t.task: task_distributions(t.rows, t.directions, t.task, out_dir / "figures")
                     for t in report.tasks}
    md = write_atomic(out_dir / "report.md", render_markdown(report, out_dir, distributions))
    page = write_atomic(out_dir / "report.html", render_html(report, out_dir, distributions, max_items))
    return {"markdown": md, "html": page}
