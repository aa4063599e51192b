"""Run registered metrics over one or more systems' generated audio and collect per-utterance rows.

Order of work: every system is paired with the manifest first (so an id mismatch fails before any model is
loaded), then each metric is built once (one model load per metric for all systems), then utterances are
loaded and scored in chunks of ``chunk_size`` (each metric batches internally). :func:`evaluate` does all that
and writes the report (``echelon-evaluate`` and the benchmark call it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from evaluation.asr import DEFAULT_ASR
from evaluation.base import EvalItem, Metric, Row, read_audio
from evaluation.pairing import PairedPaths, PairingError, pair, read_manifest, read_prompt_mapping, scan_generated
from evaluation.report import markdown_table, read_csv, summarize, write_atomic, write_csv, write_json
from utils.interrupt import StopOnSignal
from utils.progress import Progress, report_piece
from utils.registry import get
from utils.wording import plural

logger = logging.getLogger(__name__)

DEFAULT_METRICS = ("wer", "sim", "dnsmos", "f0", "mcd", "log_mel_l1", "mrstft")


@dataclass
class EvaluationOptions:
    """Which metrics run and how (every field has a command-line flag in ``bins/evaluate.py``)."""

    metrics: Sequence[str] = DEFAULT_METRICS
    asr: str = DEFAULT_ASR
    asr_model: Optional[str] = None
    sim_backend: str = "resemblyzer"
    sim_model: Optional[str] = None
    f0_method: str = "yaapt"
    align: str = "dtw"
    batch_size: int = 8
    device: str = "cpu"
    chunk_size: int = 32
    plots: bool = True
    rank_by: Optional[str] = None
    extra: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # metric name -> extra constructor kwargs
    explicit_metrics: bool = False  # the user chose the metrics: one whose inputs are missing is an error

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["metrics"] = list(self.metrics)
        return out


def metric_kwargs(name: str, options: EvaluationOptions) -> Dict[str, Any]:
    """Constructor arguments of metric ``name`` taken from the options."""
    by_name: Dict[str, Dict[str, Any]] = {
        "wer": {"asr": options.asr, "asr_model": options.asr_model, "batch_size": options.batch_size,
                "device": options.device},
        "sim": {"sim_backend": options.sim_backend, "sim_model": options.sim_model,
                "batch_size": options.batch_size, "device": options.device},
        "f0": {"f0_method": options.f0_method, "align": options.align},
        "mcd": {"align": options.align},
        "log_mel_l1": {"align": options.align},
    }
    return {**by_name.get(name, {}), **options.extra.get(name, {})}


def build_metrics(options: EvaluationOptions) -> Dict[str, Metric]:
    """Instantiate each requested metric once (this is where ASR / speaker models are loaded)."""
    if len(set(options.metrics)) != len(options.metrics):
        raise ValueError(f"a metric is listed twice: {list(options.metrics)}")
    return {name: get("metric", name)(**metric_kwargs(name, options)) for name in options.metrics}


def pair_systems(
    systems: Mapping[str, Path], manifest_path: Path, prompts_path: Optional[Path]
) -> Dict[str, List[PairedPaths]]:
    """Pair every system's directory with the manifest (and prompts); all errors before any scoring."""
    if not systems:
        raise PairingError("no system to evaluate: give at least one NAME=DIR")
    manifest = read_manifest(manifest_path)
    prompts = read_prompt_mapping(prompts_path) if prompts_path is not None else None
    return {name: pair(scan_generated(Path(d)), manifest, prompts, system=name) for name, d in systems.items()}


class AudioCache:
    """Reference/prompt audio shared by utterances of one chunk (e.g. one prompt for many) is read once."""

    def __init__(self) -> None:
        self._store: Dict[Path, Tuple[np.ndarray, int]] = {}

    def read(self, path: Optional[Path], what: str, utt_id: str) -> Tuple[Optional[np.ndarray], Optional[int]]:
        if path is None:
            return None, None
        if path not in self._store:
            wav, sr = read_audio(path)
            if wav.size == 0:
                raise ValueError(f"{utt_id}: the {what} audio {path} has no samples")
            self._store[path] = (wav, sr)
        return self._store[path]

    def clear(self) -> None:
        self._store.clear()


def load_items(paired: Sequence[PairedPaths], cache: AudioCache) -> List[EvalItem]:
    """Read the audio of a chunk of paired utterances."""
    items = []
    for entry in paired:
        generated, generated_sr = read_audio(entry.generated)
        reference, reference_sr = cache.read(entry.reference, "reference", entry.utt_id)
        prompt, prompt_sr = cache.read(entry.prompt, "prompt", entry.utt_id)
        items.append(EvalItem(entry.utt_id, generated, generated_sr, reference, reference_sr, prompt, prompt_sr,
                              entry.text, entry.speaker))
    return items


def _readable(chunk: Sequence[PairedPaths], cache: AudioCache, failed: List[Tuple[str, str, str]],
              system: str) -> Tuple[List[PairedPaths], List[EvalItem]]:
    """The utterances of ``chunk`` whose audio can be read; the others are appended to ``failed``."""
    kept, items = [], []
    for entry in chunk:
        try:
            items.extend(load_items([entry], cache))
            kept.append(entry)
        except (ValueError, OSError, RuntimeError) as err:
            failed.append((f"{system}/{entry.utt_id}", str(entry.generated), f"{type(err).__name__}: {err}"))
    return kept, items


def score_system(system: str, paired: Sequence[PairedPaths], metrics: Mapping[str, Metric], chunk_size: int,
                 failed: Optional[List[Tuple[str, str, str]]] = None, stop: Optional[StopOnSignal] = None,
                 quiet: bool = True) -> List[Row]:
    """Per-utterance rows (``system``, ``id``, ``speaker`` + every metric's columns) for one system.

    With a ``failed`` list, utterances whose audio cannot be read are skipped and listed there
    (``(system/id, path, error)``); without one, the first such error is raised. A ``stop`` that was signalled
    ends the work after the current chunk (the rows so far are returned).
    """
    rows: List[Row] = []
    cache = AudioCache()
    with Progress(len(paired), f"score {system}", unit="items", quiet=quiet) as progress:
        for start in range(0, len(paired), chunk_size):
            if stop is not None and stop.requested:
                break
            chunk = paired[start : start + chunk_size]
            progress.start_item(chunk[0].utt_id)
            if failed is None:
                items = load_items(chunk, cache)
            else:
                chunk, items = _readable(chunk, cache, failed, system)
                if not items:
                    progress.update(len(paired[start : start + chunk_size]))
                    continue
            chunk_rows: List[Row] = [{"system": system, "id": e.utt_id, "speaker": e.speaker or ""} for e in chunk]
            for index, (name, metric) in enumerate(metrics.items()):
                report_piece(index, len(metrics), "metrics")
                scored = metric.score(items)
                if len(scored) != len(items):
                    raise RuntimeError(f"metric {name} returned {plural(len(scored), 'row')} for "
                                       f"{plural(len(items), 'item')}")
                for row, values in zip(chunk_rows, scored):
                    row.update(values)
            rows.extend(chunk_rows)
            cache.clear()
            progress.update(len(paired[start : start + chunk_size]))
            logger.info("%s: scored %d/%d utterances", system, len(rows), len(paired))
    return rows


def check_metric_inputs(paired: Mapping[str, Sequence[PairedPaths]], metric_names: Sequence[str],
                        explicit: bool) -> List[str]:
    """Metrics whose inputs (reference audio, prompt, transcript) no utterance has: an error naming them when
    the user asked for them (``explicit``), else dropped with a warning. Returns the metrics to run."""
    have = {"reference": lambda p: p.reference is not None, "prompt": lambda p: p.prompt is not None,
            "text": lambda p: bool((p.text or "").strip())}
    where = {"reference": "reference audio (the manifest's 'path')", "prompt": "prompts (--prompts)",
             "text": "transcripts (the manifest's 'text')"}
    entries = [p for system in paired.values() for p in system]
    missing = {}
    for name in metric_names:
        lacking = [need for need in getattr(get("metric", name), "needs", ()) if not any(map(have[need], entries))]
        if lacking:
            missing[name] = lacking
    if missing and explicit:
        name, lacking = next(iter(missing.items()))
        raise EvaluationInputError(f"--metrics {','.join(missing)}: {name} needs {' and '.join(where[n] for n in lacking)}"
                                   ", which no utterance has; give them or choose other metrics")
    for name, lacking in missing.items():
        logger.warning("metric %s left out: it needs %s, which no utterance has", name,
                       " and ".join(where[n] for n in lacking))
    return [m for m in metric_names if m not in missing]


class EvaluationInputError(ValueError):
    """The inputs cannot support a requested metric (e.g. ``mcd`` without reference audio)."""


def run_evaluation(
    systems: Mapping[str, Path],
    manifest_path: Path,
    prompts_path: Optional[Path],
    options: EvaluationOptions,
    metrics: Optional[Mapping[str, Metric]] = None,
    failed: Optional[List[Tuple[str, str, str]]] = None,
    stop: Optional[StopOnSignal] = None,
    kept: Optional[Mapping[str, List[Row]]] = None,
    quiet: bool = True,
) -> Tuple[Dict[str, List[PairedPaths]], Dict[str, List[Row]], Mapping[str, Metric]]:
    """Pair, build metrics (unless given) and score every system; returns (pairs, rows by system, metrics).
    Unreadable generated/reference audio: see :func:`score_system` (``failed``). ``kept``: rows of an earlier
    run (``--skip_existing``) by system, reused for their ids."""
    paired = pair_systems(systems, manifest_path, prompts_path)
    if metrics is None:
        options.metrics = check_metric_inputs(paired, list(options.metrics), options.explicit_metrics)
        metrics = build_metrics(options)
    rows = {}
    for name in paired:
        old = {str(r["id"]): r for r in (kept or {}).get(name, [])}
        todo = [p for p in paired[name] if p.utt_id not in old]
        new = {str(r["id"]): r for r in score_system(name, todo, metrics, options.chunk_size, failed, stop, quiet)}
        rows[name] = [old.get(p.utt_id) or new[p.utt_id] for p in paired[name] if p.utt_id in old or p.utt_id in new]
    return paired, rows, metrics


def read_scored_rows(path: Path, metrics: Sequence[str]) -> Dict[str, List[Row]]:
    """Rows of an earlier ``per_utterance.csv`` that have every column of ``metrics`` (``--skip_existing``)."""
    if not path.is_file():
        return {}
    wanted = [c for name in metrics for c in get("metric", name).columns]
    return {system: [r for r in rows if all(c in r for c in wanted)] for system, rows in read_csv(path).items()}


def not_started(paired: Mapping[str, List[PairedPaths]], rows: Mapping[str, List[Row]],
                failed: Optional[List[Tuple[str, str, str]]]) -> int:
    """Pairs of a stopped run that were neither scored nor listed as failed."""
    bad = {uid for uid, _, _ in failed or []}
    scored = {name: {str(r["id"]) for r in rows.get(name, ())} for name in paired}
    return sum(1 for name, entries in paired.items() for p in entries
               if f"{name}/{p.utt_id}" not in bad and p.utt_id not in scored[name])


def write_plots(paired: Mapping[str, List[PairedPaths]], rows: Mapping[str, List[Row]], metrics: Mapping[str, Metric],
                options: EvaluationOptions, out_dir: Path) -> Dict[str, List[str]]:
    """Best- and worst-scored utterances of each system on its rank column, plotted under ``out_dir/plots/<system>``;
    returns the written files by system, relative to ``out_dir`` (a system without a rank column has none)."""
    from evaluation.plots import best_and_worst, choose_rank_column, plot_best_and_worst  # matplotlib: only here

    directions = {c: h for m in metrics.values() for c, h in m.columns.items()}
    plots: Dict[str, List[str]] = {}
    for system, system_rows in rows.items():
        column = choose_rank_column(system_rows, directions, options.rank_by)
        if column is None:
            continue
        wanted = {str(r["id"]) for r in system_rows}
        by_id = {p.utt_id: p for p in paired[system] if p.utt_id in wanted}
        picked = best_and_worst(system_rows, column, directions[column])
        items = {i.utt_id: i for i in load_items([by_id[u] for u in set(picked.values())], AudioCache())}
        written = plot_best_and_worst(items, system_rows, column, directions[column], out_dir / "plots" / system,
                                      options.f0_method, options.align)
        plots[system] = [str(p.relative_to(out_dir)) for p in written]
    return plots


def evaluate(
    systems: Mapping[str, Path],
    manifest: Path,
    out_dir: Path,
    prompts: Optional[Path] = None,
    options: Optional[EvaluationOptions] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    failed: Optional[List[Tuple[str, str, str]]] = None,
    skip_existing: bool = False,
    quiet: bool = True,
) -> Dict[str, Any]:
    """Score every system, write CSV/JSON/Markdown/plots into ``out_dir`` and return the summary payload.

    ``metrics`` (name -> metric object) lets a caller reuse already-loaded models; by default they are built
    from ``options``. With a ``failed`` list, unreadable utterances are skipped and listed there.
    ``skip_existing`` reuses the rows of an earlier ``per_utterance.csv`` that have every metric's columns.
    SIGINT/SIGTERM stop after the current chunk: the rows so far are written to ``per_utterance.csv`` (so
    ``skip_existing`` continues) and the payload is ``{"stopped": 130|143, "n_scored", "not_started"}``.
    """
    options = options or EvaluationOptions()
    out_dir = Path(out_dir)
    kept = read_scored_rows(out_dir / "per_utterance.csv", options.metrics) if skip_existing else None
    with StopOnSignal("the current chunk") as stop:
        paired, rows, metrics = run_evaluation(systems, Path(manifest), Path(prompts) if prompts else None, options,
                                               metrics, failed, stop, kept, quiet)
    all_rows = [row for system_rows in rows.values() for row in system_rows]
    write_csv(out_dir / "per_utterance.csv", all_rows)
    if stop.requested:
        return {"stopped": stop.exit_code, "n_scored": len(all_rows), "not_started": not_started(paired, rows, failed),
                "kept": sum(len(v) for v in (kept or {}).values())}
    summary = summarize(rows, metrics)
    plots = write_plots(paired, rows, metrics, options, out_dir) if options.plots else {}
    payload = {
        "kept": sum(len(v) for v in (kept or {}).values()),
        "systems": summary,
        "plots": plots,
        "manifest": str(manifest),
        "prompts": str(prompts) if prompts else None,
        "options": options.to_dict(),
    }
    write_json(out_dir / "summary.json", payload)
    write_atomic(out_dir / "summary.md", f"# Evaluation\n\nManifest: `{manifest}`\n\n" + markdown_table(summary))
    return payload
