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
from evaluation.benchmark.results import BenchmarkReport, SystemEntry, TaskReport
from evaluation.report import TABLE_NOTES, column_label, summary_cells, write_atomic

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
"""


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

    def audio(self, path: Optional[Path | str]) -> str:
        if path is None:
            return "<td>-</td>"
        return f'<td><audio controls preload="metadata" src="{self.href(path)}"></audio></td>'


def _html_task(page: _Page, task: TaskReport, distributions: Mapping[str, Path], max_items: int) -> None:
    page.add(f'<section id="task-{html.escape(task.task)}">')
    page.text("h2", task.title)
    page.text("p", task.description)
    header, rows = task_table(task)
    page.table(header, rows, f"results-{task.task}")
    for note in TABLE_NOTES:
        page.text("p", note, class_="note")
    if task.excluded:
        listed = ", ".join(f"{i} ({why})" for i, why in sorted(task.excluded.items()))
        page.text("p", f"Left out of the comparison (not produced by every system): {listed}", class_="note")
    if distributions:
        page.text("h3", "Metric distributions")
        for column, path in distributions.items():
            page.figure(path, f"{column_label(column)} per system")
    if any(task.item_plots.values()):
        page.text("h3", "Best and worst items (F0 overlay, mel spectrograms)")
        for system, paths in task.item_plots.items():
            for path in paths:
                page.figure(path, f"{system}: {Path(path).stem}")
    _html_audio_table(page, task, max_items)
    page.add("</section>")


def _html_audio_table(page: _Page, task: TaskReport, max_items: int) -> None:
    items = list(task.items)[:max_items]
    if not items:
        return
    page.text("h3", f"Listen ({len(items)} of {len(task.items)} items)")
    inputs = [("reference", "reference"), ("prompt", "prompt"), ("source", "source")]
    used = [(label, attr) for label, attr in inputs if any(getattr(i, attr) is not None for i in items)]
    if all(i.reference == i.source for i in items):  # VC: the source is the reference; one player is enough
        used = [(label, attr) for label, attr in used if attr != "reference"]
    systems = task.systems or sorted({s for i in items for s in i.outputs})
    out = [f'<table id="audio-{html.escape(task.task)}"><thead><tr><th>item</th><th>text</th>']
    out += [f"<th>{html.escape(label)}</th>" for label, _ in used] + [f"<th>{html.escape(s)}</th>" for s in systems]
    out.append("</tr></thead><tbody>")
    for item in items:
        out.append(f"<tr><td>{html.escape(item.id)}</td><td>{html.escape(item.text)}</td>")
        out += [page.audio(getattr(item, attr)) for _, attr in used]
        out += [page.audio(item.outputs.get(s)) for s in systems]
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
    lines += ["## Protocol", ""] + [f"* {line}" for line in report.protocol] + ["", "## Systems", ""]
    lines += _md_table(*_system_rows(report.systems)) + [""]
    for task in report.tasks:
        lines += [f"## {task.title}", "", task.description, ""]
        lines += _md_table(*task_table(task)) + [""] + list(TABLE_NOTES) + [""]
        if task.excluded:
            lines += ["Left out of the comparison: " + ", ".join(f"{i} ({w})" for i, w in sorted(task.excluded.items())), ""]
        figures = [(column_label(c), p) for c, p in distributions.get(task.task, {}).items()]
        figures += [(f"{s}: {Path(p).stem}", p) for s, paths in task.item_plots.items() for p in paths]
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
