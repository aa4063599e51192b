"""Run one system over the protocol in a process of its own: load it, generate every task it supports, measure.

Each system runs in a fresh (spawned) process so that its peak memory (``VmHWM``, ``utils.memory.peak_rss_mb``)
is its own, a crash or an out-of-memory kill costs only that system, and every system starts with the same
thread settings. The child writes ``<out_dir>/<system>/result.json``; a system whose weights or dependencies
are missing is reported with the reason and skipped, the others go on.

Systems are driven only through :mod:`models.base.tasks` (``TextToSpeech.synthesize``,
``VoiceConversion.convert``) after :func:`load_system` built them from their spec.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from evaluation.benchmark.protocol import Job
from utils.memory import peak_rss_mb

RESULT = "result.json"
STOP_SIGNAL = signal.SIGUSR1  # parent -> system process: stop after the current item


@dataclass
class SystemRun:
    """What the child reports. ``reason`` is set when the system was skipped or failed as a whole."""

    name: str
    status: str = "ok"  # ok | skipped | failed | stopped
    reason: str = ""
    pipeline: str = ""
    parameters: Optional[int] = None
    peak_memory_mb: Optional[float] = None
    tasks: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # task -> timing, outputs, failures
    peak_memory_reused: bool = False  # --skip_existing kept every item: the peak is the earlier run's


def load_system(spec: Any, overrides: Sequence[str] = (), device: str = "cpu") -> Any:
    """A task pipeline from a spec object, spec file or checkpoint directory (models/base/pipeline.py)."""
    from models.base.pipeline import load_pipeline

    return load_pipeline(spec, overrides=list(overrides), device=device)


def pipeline_name(spec: Any) -> str:
    """The registered pipeline a spec object names, or the spec file / checkpoint path itself."""
    return str(spec.get("pipeline", "")) if isinstance(spec, Mapping) else str(spec)


def preflight(spec: Any) -> Optional[str]:
    """Why a system certainly cannot load, found without importing it (missing path, unknown pipeline); else None.

    Saves starting a process (and importing torch) for systems whose experiment does not exist yet.
    """
    from utils.registry import names

    if isinstance(spec, str):
        return None if Path(spec).exists() else f"missing weights: {spec} does not exist"
    name = spec.get("pipeline")
    if name not in names("pipeline"):
        return f"not available: no pipeline named {name!r} in this checkout (known: {', '.join(names('pipeline'))})"
    absent = [f"{k}={v}" for k, v in (spec.get("components") or {}).items() if isinstance(v, str) and not Path(v).exists()]
    return f"missing weights: {', '.join(absent)} not found" if absent else None


def skip_reason(err: BaseException) -> str:
    """Why a system cannot run, in one line: missing weights, a missing dependency, or the error itself."""
    from utils.registry import RegistryError

    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, RegistryError):  # e.g. a model family whose branch has not landed in this checkout
        return f"not available: {text}"
    if isinstance(err, ImportError):
        return f"missing dependency: {text}"
    if isinstance(err, (FileNotFoundError, NotADirectoryError)) or "not found" in text.lower():
        return f"missing weights: {text}"
    return f"cannot load ({type(err).__name__}): {text}"


def count_parameters(obj: Any) -> Optional[int]:
    """Parameters of every torch module reachable from the pipeline's attributes (each counted once)."""
    import torch

    seen: Dict[int, int] = {}
    stack, visited = [(obj, 0)], set()
    while stack:
        node, depth = stack.pop()
        if id(node) in visited or depth > 4:
            continue
        visited.add(id(node))
        if isinstance(node, torch.nn.Module):
            seen.update({id(p): p.numel() for p in node.parameters()})
            continue
        children = vars(node).values() if hasattr(node, "__dict__") else []
        if isinstance(node, Mapping):
            children = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        stack.extend((child, depth + 1) for child in children if not isinstance(child, (str, bytes, int, float)))
    return sum(seen.values()) if seen else None


def supports(capabilities: Any, task: str) -> bool:
    tasks = set(capabilities.tasks)
    if task == "vc":
        return "vc" in tasks
    if task == "tts_cross_sentence":
        return "tts" in tasks and capabilities.audio_prompt
    if task == "tts_continuation":
        return "tts" in tasks and capabilities.continuation
    return "tts" in tasks and not capabilities.audio_prompt  # plain "tts": no prompt needed


def speaker_for(job: Job, known: Sequence[str], index: int) -> Optional[str]:
    """A multi-speaker system speaks as the test item's speaker when it knows it, else its speakers in turn."""
    known = tuple(known)
    if not known:
        return None
    return job.speaker if job.speaker in known else known[index % len(known)]


def _call(pipeline: Any, task: str, job: Job, seed: int, index: int) -> Any:
    caps = pipeline.capabilities
    if task == "vc":
        return pipeline.convert([job.source], [job.prompt], seed=seed)[0]
    if task == "tts":
        speaker = speaker_for(job, caps.speakers, index)
        return pipeline.synthesize([job.text], speakers=None if speaker is None else [speaker], seed=seed)[0]
    prompt_texts = [job.prompt_text] if caps.prompt_text else None
    return pipeline.synthesize([job.text], prompts=[job.prompt], prompt_texts=prompt_texts, seed=seed)[0]


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of the programs it ran and waited for (e.g. espeak-ng)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def generate_task(pipeline: Any, task: str, jobs: Sequence[Job], out_dir: Path, seed: int,
                  skip_existing: bool = False, stop: Optional[Any] = None, quiet: bool = False) -> Dict[str, Any]:
    """Generate every job one by one; wall/CPU seconds count only the system's own calls.

    ``skip_existing`` keeps outputs an earlier run wrote (atomically, so complete; not timed again: their
    ``timings`` come from the earlier result, :func:`reuse_earlier`); a signalled ``stop``
    (:class:`utils.interrupt.StopOnSignal`) ends the task after the current item. ``timings``: id -> [wall, CPU,
    audio seconds] of each item generated here."""
    from processors.audio import save_audio
    from utils.progress import Progress

    kept = {job.id: str(out_dir / task / f"{job.id}.wav") for job in jobs
            if skip_existing and (out_dir / task / f"{job.id}.wav").is_file()}
    todo = [(n, job) for n, job in enumerate(jobs) if job.id not in kept]
    outputs: Dict[str, str] = {}
    failures: Dict[str, str] = {}
    timings: Dict[str, List[float]] = {}
    not_started = 0
    with Progress(len(jobs), f"{out_dir.name} {task}", unit="items", initial=len(kept), quiet=quiet) as progress:
        for done, (n, job) in enumerate(todo):
            if stop is not None and stop.requested:
                not_started = len(todo) - done
                break
            progress.start_item(job.id)
            start_wall, start_cpu = time.perf_counter(), _cpu_seconds()
            try:
                result = _call(pipeline, task, job, seed + n, n)
            except Exception as err:  # a bad item is listed and the task goes on
                failures[job.id] = f"{type(err).__name__}: {str(err).strip()[:300]}"
                progress.update(1, failed=len(failures))
                continue
            timings[job.id] = [time.perf_counter() - start_wall, _cpu_seconds() - start_cpu, result.seconds]
            outputs[job.id] = str(save_audio(out_dir / task / f"{job.id}.wav", result.waveform, result.sample_rate))
            progress.update(1, failed=len(failures))
    wall, cpu, audio = (sum(t[k] for t in timings.values()) for k in range(3))
    outputs = {job.id: kept.get(job.id) or outputs[job.id] for job in jobs if job.id in kept or job.id in outputs}
    return {"wall_seconds": wall, "cpu_seconds": cpu, "audio_seconds": audio, "outputs": outputs,
            "failures": failures, "kept": len(kept), "not_started": not_started, "timings": timings}


def reuse_earlier(run: SystemRun, earlier: Optional[SystemRun]) -> SystemRun:
    """A ``--skip_existing`` run completed with what the ``earlier`` run of the same out_dir measured: each kept
    item's timing (so RTF covers every item timed in either run; ``reused_timings`` counts those taken,
    ``untimed`` the kept items no result timed) and, when this process generated nothing, the peak memory (a
    process that only loaded the model measures nothing: ``peak_memory_reused``)."""
    generated = 0
    for task, result in run.tasks.items():
        timings = result.setdefault("timings", {})
        generated += len(timings)
        before = earlier.tasks.get(task, {}).get("timings", {}) if earlier is not None else {}
        kept = [uid for uid in result["outputs"] if uid not in timings]
        reused = {uid: before[uid] for uid in kept if uid in before}
        timings.update(reused)
        result["wall_seconds"], result["cpu_seconds"], result["audio_seconds"] = (
            sum(t[k] for t in timings.values()) for k in range(3))
        result["reused_timings"], result["untimed"] = len(reused), len(kept) - len(reused)
    if run.status == "ok" and run.tasks and generated == 0:
        run.peak_memory_mb = earlier.peak_memory_mb if earlier is not None else None
        run.peak_memory_reused = run.peak_memory_mb is not None
    return run


def read_result(path: Path) -> Optional[SystemRun]:
    """The :class:`SystemRun` a system's process wrote to ``path``, or None when there is none (or unreadable)."""
    try:
        return SystemRun(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def run_system(name: str, spec: Any, overrides: Sequence[str], seed: int, jobs: Mapping[str, Sequence[Job]],
               out_dir: Path, threads: int, device: str, skip_existing: bool = False, quiet: bool = False,
               stop_signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> SystemRun:
    """Load ``spec`` and run the tasks it supports (in the calling process); see :func:`run_in_child`.
    SIGINT/SIGTERM stop it after the current item (``status`` "stopped"; what was generated is kept)."""
    import torch

    from utils.interrupt import StopOnSignal

    torch.set_num_threads(threads)
    run = SystemRun(name, pipeline=pipeline_name(spec))
    try:
        pipeline = load_system(spec, overrides, device)
    except Exception as err:  # missing weights / dependency: skipped with the reason, the benchmark goes on
        run.status, run.reason = "skipped", skip_reason(err)
        return run
    run.pipeline = getattr(pipeline, "_registry_key", ("", run.pipeline))[1] or run.pipeline
    run.parameters = count_parameters(pipeline)
    with StopOnSignal("the current item", stop_signals) as stop:
        for task, task_jobs in jobs.items():
            if task_jobs and supports(pipeline.capabilities, task):
                run.tasks[task] = generate_task(pipeline, task, task_jobs, out_dir / name, seed, skip_existing, stop,
                                                quiet)
    if stop.requested:
        run.status, run.reason = "stopped", f"stopped by {stop.name}"
    elif not run.tasks:
        run.status, run.reason = "skipped", "supports none of the protocol's tasks"
    return run


def _child(kwargs: Dict[str, Any], result_path: str) -> None:
    # The parent decides when to stop: a Ctrl-C on the terminal reaches the whole process group, so the child
    # ignores SIGINT and stops after its current item when the parent sends STOP_SIGNAL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run = run_system(**kwargs, stop_signals=(STOP_SIGNAL,))
    except Exception as err:  # noqa: BLE001 - reported, not raised: the parent goes on with the next system
        run = SystemRun(kwargs["name"], status="failed", reason=f"{type(err).__name__}: {err}")
        traceback.print_exc()
    if run.status == "ok":  # a skipped system's process only imported the toolkit: no number to report
        run.peak_memory_mb = peak_rss_mb()  # VmHWM: ru_maxrss would include the parent's peak
    from utils.io import atomic_write_text

    atomic_write_text(result_path, json.dumps(asdict(run), indent=2))


def run_in_child(name: str, spec: Any, overrides: Sequence[str], seed: int, jobs: Mapping[str, Sequence[Job]],
                 out_dir: Path, threads: int, device: str, timeout: Optional[float] = None,
                 skip_existing: bool = False, quiet: bool = False, stop: Optional[Any] = None) -> SystemRun:
    """:func:`run_system` in a spawned process with ``threads`` threads; its result file is read back.

    A signal the parent's ``stop`` caught is passed on to the child (which stops after its current item)."""
    result_path = out_dir / name / RESULT
    earlier = read_result(result_path) if skip_existing else None
    result_path.unlink(missing_ok=True)
    env_threads = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in env_threads}
    os.environ.update(env_threads)  # inherited by the spawned child before it imports numpy/torch
    try:
        kwargs = dict(name=name, spec=spec, overrides=list(overrides), seed=seed, jobs=dict(jobs), out_dir=out_dir,
                      threads=threads, device=device, skip_existing=skip_existing, quiet=quiet)
        process = multiprocessing.get_context("spawn").Process(target=_child, args=(kwargs, str(result_path)))
        process.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        forwarded = False
        while process.is_alive() and (deadline is None or time.monotonic() < deadline):
            process.join(0.2)
            if stop is not None and stop.requested and not forwarded and process.is_alive():
                os.kill(process.pid, STOP_SIGNAL)
                forwarded = True
        if process.is_alive():
            process.kill()
            process.join()
            return SystemRun(name, status="failed", reason=f"did not finish in {timeout:g} s")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    run = read_result(result_path)
    if run is None:
        return SystemRun(name, status="failed", reason=f"its process died (exit code {process.exitcode})")
    if skip_existing:
        from utils.io import atomic_write_text

        atomic_write_text(result_path, json.dumps(asdict(reuse_earlier(run, earlier)), indent=2))
    return run
