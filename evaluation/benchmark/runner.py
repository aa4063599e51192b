"""One benchmark run: protocol lists -> every system in its own process -> evaluation per task -> report.

Output folder::

    protocol/<task>.jsonl, skipped.tsv, prefixes/    the exact job lists (and continuation prompts)
    systems/<system>/<task>/<id>.wav, result.json    generated audio, timing, failures, memory, parameters
    eval/<task>/                                     an echelon-evaluate folder per task (manifest.jsonl,
                                                     outputs/<system> links, per_utterance.csv, summary.*)
    report.md, report.html, figures/                 the report

A task compares its systems on the same items only: an item one system failed is left out for all (named in
the report). Metrics come from the ``metric`` registry by name; one that cannot be built (not registered yet,
weights missing offline) is listed in the protocol section and the rest go on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from evaluation.benchmark.collect import task_from_evaluation
from evaluation.benchmark.config import BenchmarkConfig
from evaluation.benchmark.protocol import Job, build_protocol, write_jobs
from evaluation.benchmark.report import write_report
from evaluation.benchmark.results import GROUND_TRUTH, BenchmarkReport, Efficiency, ItemMedia, SystemEntry, TaskReport
from evaluation.benchmark.systems import SystemRun, pipeline_name, preflight, run_in_child
from evaluation.runner import EvaluationOptions, evaluate, metric_kwargs
from utils.interrupt import StopOnSignal
from utils.io import atomic_write_text
from utils.registry import get
from utils.wording import agree, plural

logger = logging.getLogger(__name__)

# Metrics that compare with a recording of the same words by the same voice: meaningless without one.
PARALLEL_METRICS = {"mcd", "log_mel_l1", "mrstft", "stoi", "pesq"}
# Metrics that need some reference audio (prompt or recording): not for prompt-less TTS.
REFERENCE_METRICS = PARALLEL_METRICS | {"sim", "f0"}
TITLES = {
    "tts_cross_sentence": ("Zero-shot TTS, cross-sentence prompt",
                           "Each test sentence spoken in the voice of another utterance of its speaker."),
    "tts_continuation": ("Zero-shot TTS, continuation",
                         "The first seconds of the target recording are the prompt; the system continues it."),
    "vc": ("Voice conversion", "A test utterance converted to the voice of another real speaker's utterance; F0 "
                               "and WER are measured against the source."),
    "tts": ("TTS without prompt", "Plain TTS (single-speaker or named-speaker systems); WER and reference-free "
                                  "metrics only."),
}


def task_metrics(task: str, names: Sequence[str]) -> List[str]:
    if task == "tts":
        return [n for n in names if n not in REFERENCE_METRICS]
    if task == "vc":
        return [n for n in names if n not in PARALLEL_METRICS]
    return list(names)


def build_available_metrics(cfg: BenchmarkConfig) -> Tuple[Dict[str, Any], Dict[str, str], EvaluationOptions]:
    """Each configured metric built once: ``(metrics, unavailable name -> reason, options)``."""
    ev = cfg.evaluation
    options = EvaluationOptions(metrics=tuple(ev.metrics), sim_backend=ev.sim_backend, sim_model=ev.sim_model,
                                f0_method=ev.f0_method, batch_size=ev.batch_size, device=cfg.device, plots=ev.plots,
                                asr_model=ev.asr_model)
    if ev.asr:
        options.asr = ev.asr
    built, missing = {}, {}
    for name in ev.metrics:
        try:
            built[name] = get("metric", name)(**metric_kwargs(name, options))
        except Exception as err:  # noqa: BLE001 - an unavailable metric is reported, the others run
            missing[name] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return built, missing, options


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(target, link.parent), link)


def evaluate_task(task: str, jobs: Sequence[Job], outputs: Mapping[str, Mapping[str, str]], eval_dir: Path,
                  metrics: Mapping[str, Any], options: EvaluationOptions) -> Tuple[List[str], Dict[str, str]]:
    """Score the items every system produced with :func:`evaluation.runner.evaluate`; ``(ids, excluded)``."""
    produced = [set(o) for o in outputs.values()]
    common = [j for j in jobs if all(j.id in p for p in produced)]
    excluded = {j.id: "not produced by " + ", ".join(s for s, o in outputs.items() if j.id not in o)
                for j in jobs if j not in common}
    if not common:
        return [], excluded
    rows = [{"id": j.id, "path": j.reference, "speaker": j.speaker, "text": j.text, "prompt": j.prompt}
            for j in common]
    atomic_write_text(eval_dir / "manifest.jsonl", "".join(json.dumps({k: v for k, v in r.items() if v}) + "\n"
                                                            for r in rows))
    systems = {}
    for system, files in outputs.items():
        for job in common:
            _link(Path(files[job.id]), eval_dir / "outputs" / system / f"{job.id}.wav")
        systems[system] = eval_dir / "outputs" / system
    chosen = {n: m for n, m in metrics.items() if n in task_metrics(task, list(metrics))}
    evaluate(systems, eval_dir / "manifest.jsonl", eval_dir, None, options, chosen)
    return [j.id for j in common], excluded


class NoSystemRan(RuntimeError):
    """Not one system of the benchmark could run; ``reasons`` says why for each (system -> reason)."""

    def __init__(self, reasons: Mapping[str, str]):
        super().__init__("no system could run: " + "; ".join(f"{n}: {r}" for n, r in reasons.items()))
        self.reasons = dict(reasons)


def run_benchmark(cfg: BenchmarkConfig, out_dir: Path, timeout: float | None = None, skip_existing: bool = False,
                  quiet: bool = False) -> Dict[str, Any]:
    """Run everything and write the report; returns the report's paths (and ``failed``: the items a system
    could not generate, as ``(system/id, reason)``).

    ``skip_existing`` keeps the audio an earlier (interrupted) run generated and generates the rest.
    SIGINT/SIGTERM stop after the current item of the running system, with no report:
    ``{"stopped": 130|143, "written", "failed", "not_started"}``. :class:`NoSystemRan` when no system could run.
    """
    out_dir = Path(out_dir)
    jobs, skipped = build_protocol(cfg.protocol, out_dir / "protocol")
    write_jobs(jobs, skipped, out_dir / "protocol")
    with StopOnSignal("the current item") as stop:
        runs = run_systems(cfg, jobs, out_dir / "systems", timeout, skip_existing, quiet, stop)
    failed = failed_items(runs)
    if stop.requested:
        return stopped_payload(stop.exit_code, failed, cfg, jobs, runs)
    if not any(r.status == "ok" for r in runs):
        raise NoSystemRan({r.name: r.reason for r in runs})
    metrics, unavailable, options = build_available_metrics(cfg)
    tasks, notes = [], []
    for task, task_jobs in jobs.items():
        result = benchmark_task(cfg, task, task_jobs, runs, out_dir, metrics, options, notes)
        if result is not None:
            tasks.append(result)
    protocol = protocol_lines(cfg, jobs, skipped, unavailable) + notes + reuse_notes(runs)
    report = BenchmarkReport(cfg.title, protocol, system_entries(runs, tasks), tasks,
                             created=time.strftime("%Y-%m-%d %H:%M:%S"))
    return {**write_report(report, out_dir, cfg.max_audio_items), "failed": failed}


def run_systems(cfg: BenchmarkConfig, jobs: Mapping[str, List[Job]], systems_dir: Path, timeout: float | None,
                skip_existing: bool, quiet: bool, stop: StopOnSignal) -> List[SystemRun]:
    """Each system of ``cfg`` in its own process, one after the other, until ``stop`` is requested; a system
    whose spec cannot run here (:func:`preflight`) is recorded as skipped without starting a process."""
    runs: List[SystemRun] = []
    for system in cfg.systems:
        if stop.requested:
            break
        reason = preflight(system.spec)
        if reason is not None:
            logger.warning("system %s skipped: %s", system.name, reason)
            runs.append(SystemRun(system.name, status="skipped", reason=reason, pipeline=pipeline_name(system.spec)))
            continue
        logger.info("system %s: generating", system.name)
        runs.append(run_in_child(system.name, system.spec, system.overrides, system.seed, jobs, systems_dir,
                                 cfg.threads, cfg.device, timeout, skip_existing, quiet, stop))
        if runs[-1].status != "ok":
            logger.warning("system %s %s: %s", system.name, runs[-1].status, runs[-1].reason)
    return runs


def failed_items(runs: Sequence[SystemRun]) -> List[Tuple[str, str]]:
    """Failed items (``system/task/id``: task ids repeat across tasks) and failed systems (timeout, crash), once,
    each with its reason."""
    return ([(f"{r.name}/{task}/{i}", e) for r in runs for task, t in r.tasks.items() for i, e in t["failures"].items()]
            + [(r.name, r.reason) for r in runs if r.status == "failed"])


def stopped_payload(exit_code: Optional[int], failed: List[Tuple[str, str]], cfg: BenchmarkConfig,
                    jobs: Mapping[str, List[Job]], runs: Sequence[SystemRun]) -> Dict[str, Any]:
    """What a stopped run got through: items ``written`` now, ``kept`` from an earlier run, ``not_started`` (of
    the systems that ran and of those never reached), and the ``failed`` ones."""
    done = [t for r in runs for t in r.tasks.values()]
    total = sum(len(j) for j in jobs.values())
    return {"stopped": exit_code, "written": sum(len(t["outputs"]) - t.get("kept", 0) for t in done),
            "failed": failed, "kept": sum(t.get("kept", 0) for t in done),
            "not_started": sum(t.get("not_started", 0) for t in done) + total * (len(cfg.systems) - len(runs))}


def benchmark_task(cfg: BenchmarkConfig, task: str, task_jobs: List[Job], runs: Sequence[SystemRun], out_dir: Path,
                   metrics: Mapping[str, Any], options: EvaluationOptions, notes: List[str]) -> Optional[TaskReport]:
    """One task scored over the items every system produced (with the recordings as a row when they are
    references); None, with the reason appended to ``notes``, when nothing can be compared."""
    outputs = {r.name: r.tasks[task]["outputs"] for r in runs if task in r.tasks and r.tasks[task]["outputs"]}
    for r in runs:  # a system that failed every item is named, not allowed to empty the comparison
        if task in r.tasks and not r.tasks[task]["outputs"]:
            first = next(iter(r.tasks[task]["failures"].values()), "no item")
            notes.append(f"Task {task}: {r.name} produced no item (first failure: {first})")
    if not outputs:
        notes.append(f"Task {task}: no available system supports it" if task_jobs else f"Task {task}: no items")
        return None
    if cfg.protocol.ground_truth and task != "vc" and all(j.reference for j in task_jobs):
        outputs = {GROUND_TRUTH: {j.id: j.reference for j in task_jobs}, **outputs}
    ids, excluded = evaluate_task(task, task_jobs, outputs, out_dir / "eval" / task, metrics, options)
    if not ids:
        notes.append(f"Task {task}: no item was produced by every system")
        return None
    efficiency = {r.name: Efficiency(t["wall_seconds"], t["cpu_seconds"], t["audio_seconds"], len(t["outputs"]),
                                     len(t["failures"])) for r in runs for n, t in r.tasks.items() if n == task}
    media = [ItemMedia(**asdict(j), outputs={s: Path(o[j.id]) for s, o in outputs.items()})
             for j in task_jobs if j.id in ids]
    title, description = TITLES[task]
    return task_from_evaluation(task, title, description, out_dir / "eval" / task, media, efficiency, excluded)


def system_entries(runs: Sequence[SystemRun], tasks: Sequence[TaskReport]) -> List[SystemEntry]:
    """The report's systems table: every system that was to run, with the recordings first when a task has them."""
    entries = [SystemEntry(r.name, r.pipeline, r.status == "ok", "" if r.status == "ok" else r.reason,
                           r.parameters, r.peak_memory_mb, sorted(r.tasks)) for r in runs]
    truth_tasks = sorted(t.task for t in tasks if GROUND_TRUTH in t.summary)
    if truth_tasks:
        entries.insert(0, SystemEntry(GROUND_TRUTH, "recordings (upper bound)", True, tasks=truth_tasks))
    return entries


def reuse_notes(runs: Sequence[SystemRun]) -> List[str]:
    """What a ``--skip_existing`` run took from the earlier run of its out_dir (timings of kept items, peak
    memory), or could not measure, said in the report (see :func:`evaluation.benchmark.systems.reuse_earlier`)."""
    notes = []
    for r in runs:
        for task, t in r.tasks.items():
            total, reused, untimed = len(t["outputs"]), t.get("reused_timings", 0), t.get("untimed", 0)
            if reused:
                notes.append(f"{r.name}, task {task}: the RTF includes {plural(reused, 'item')} of {total} timed by an "
                             "earlier run of this out_dir (--skip_existing kept their audio)")
            if untimed:
                rest = "RTF n/a" if untimed == total else f"the RTF covers the other {total - untimed}"
                notes.append(f"{r.name}, task {task}: {plural(untimed, 'kept item')} of {total} "
                             f"{agree(untimed, 'has', 'have')} no timing from an earlier run: {rest}")
        if r.peak_memory_reused:
            notes.append(f"{r.name}: every item was kept (--skip_existing): peak memory measured by the earlier run")
        elif r.status == "ok" and r.peak_memory_mb is None:
            notes.append(f"{r.name}: every item was kept (--skip_existing) and no earlier run measured the peak "
                         "memory: n/a")
    return notes


def protocol_lines(cfg: BenchmarkConfig, jobs: Mapping[str, Sequence[Job]], skipped: Sequence[dict],
                   unavailable: Mapping[str, str]) -> List[str]:
    p = cfg.protocol
    lines = [f"Test set: {p.manifest} (seed {p.seed}{f', first {p.max_items} items' if p.max_items else ''})",
             "Items per task: " + ", ".join(f"{t} {len(j)}" for t, j in jobs.items())
             + (f"; {len(skipped)} left out (protocol/skipped.tsv)" if skipped else "")]
    if jobs.get("tts_continuation"):
        lines.append(f"Continuation prompt: the first {p.prefix_seconds:g} s of the target recording")
    lines += [f"Every system in its own process, {plural(cfg.threads, 'thread')}, device {cfg.device}; RTF = compute "
              f"seconds per second of generated audio (wall clock and process CPU time)",
              "Metrics: " + ", ".join(cfg.evaluation.metrics)]
    lines += [f"Metric {name} unavailable: {why}" for name, why in unavailable.items()]
    if p.ground_truth:
        lines.append(f"'{GROUND_TRUTH}' is the recordings themselves (an upper bound, not ranked; not for VC)")
    return lines
