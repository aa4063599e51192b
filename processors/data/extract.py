"""Feature extraction over a manifest with any registered extractors: parallel, resumable, atomic, sharded.

Files: ``<out_dir>/<name>/<id>.pt`` (:func:`processors.features.store.feature_path`), one per item and feature,
in the extractor's storage dtype.  Behaviour:

* resumable — an item whose file for a feature exists and is a complete archive is skipped for that feature;
  a partly done item computes only its missing features (``overwrite=True`` recomputes).  Each feature's
  settings are recorded in ``<name>/feature.json`` and a run with other settings is refused;
* atomic — every file is written under a temporary name and renamed; nothing already written is removed;
* parallel — per-item extractors run in ``num_workers`` processes; batched ones (SSL, codecs) run here, on
  their device, in length-sorted batches of ``batch_size``;
* bad items (missing/empty/corrupt/too-short audio, extractor failures) are skipped and listed with their
  reason; sharding, the per-run lists and the merge are described in :mod:`processors.data.shards`.
"""

from __future__ import annotations

import logging
import os
import signal
from concurrent.futures import CancelledError, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from processors.audio import AudioError, load_audio
from processors.data.manifest import ManifestEntry
from processors.data.shards import Shard, ShardReport, job_id, merge_shards, run_stamp
from processors.features.base import FeatureError, FeatureExtractor
from processors.features.store import check_feature_settings, feature_path, is_valid_feature_file, save_feature
from utils.interrupt import StopOnSignal
from utils.progress import Progress
from utils.wording import plural

logger = logging.getLogger(__name__)

_ITEM_ERRORS = (AudioError, FeatureError, ValueError, RuntimeError, OSError)


@dataclass
class ExtractionReport:
    done: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    bad: Dict[str, str] = field(default_factory=dict)  # id -> reason
    bad_items_path: Optional[Path] = None  # this run's list (a new file per run)
    job: str = ""
    shard: Shard = Shard()
    merged: Optional[Dict[str, Any]] = None  # the merge summary when this run merged (single shard)
    stopped: Optional[int] = None  # exit status when SIGINT/SIGTERM stopped the run (130/143)
    not_started: List[str] = field(default_factory=list)  # ids left undone by a stopped run


def _reason(err: BaseException, feature: str = "") -> str:
    text = f"{feature + ': ' if feature else ''}{type(err).__name__}: {err}"
    return text.replace("\t", " ").replace("\n", " ")


# --------------------------------------------------------------------------- per-item extractors (workers)
WORKER_EXTRACTORS: Dict[str, FeatureExtractor] = {}


def init_worker(extractors: Dict[str, FeatureExtractor]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides when to stop
    torch.set_num_threads(1)  # workers are the parallelism; avoid oversubscription
    WORKER_EXTRACTORS.clear()
    WORKER_EXTRACTORS.update(extractors)


class ItemFailure(Exception):
    """One item could not be computed; ``reason`` is the line that lists it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def compute_item(entry: ManifestEntry, names: Sequence[str], extractors: Dict[str, FeatureExtractor],
                 min_duration: float, audio: Optional[Dict[int, np.ndarray]] = None) -> Dict[str, torch.Tensor]:
    """The named per-item features of one entry; ``audio`` caches one load per sample rate (filled here).
    Raises :class:`ItemFailure` naming the culprit (unreadable audio, or the feature that failed)."""
    audio = {} if audio is None else audio
    values = {}
    for name in names:
        extractor = extractors[name]
        try:
            rate = extractor.sample_rate
            if rate not in audio:
                audio[rate] = load_audio(entry.path, rate, min_duration=min_duration)
        except _ITEM_ERRORS as err:
            raise ItemFailure(_reason(err)) from None
        try:
            with torch.no_grad():
                values[name] = extractor.extract(audio[rate])
        except _ITEM_ERRORS as err:
            raise ItemFailure(_reason(err, name)) from None
    return values


def _item_features(entry: ManifestEntry, names: Tuple[str, ...], extractors: Dict[str, FeatureExtractor],
                   out_dir: Path, min_duration: float) -> Tuple[str, Optional[str]]:
    """Compute all missing features of one item, then save them; returns (id, reason or None)."""
    try:
        values = compute_item(entry, names, extractors, min_duration)
    except ItemFailure as failure:
        return entry.id, failure.reason
    try:
        for name, value in values.items():
            save_feature(out_dir, name, entry.id, value, extractors[name].storage_dtype)
    except _ITEM_ERRORS as err:
        return entry.id, _reason(err, name)
    return entry.id, None


def _worker_item(entry, names, out_dir, min_duration):
    return _item_features(entry, names, WORKER_EXTRACTORS, out_dir, min_duration)


def _run_per_item(jobs, extractors, out_dir: Path, num_workers: int, min_duration: float, bad: Dict[str, str],
                  stop: StopOnSignal, quiet: bool = False) -> List[str]:
    """Per-item features of ``jobs``; returns the ids not started because a signal stopped the run."""
    if not jobs:
        return []
    with Progress(len(jobs), "features", unit="items", quiet=quiet) as progress:
        if num_workers <= 1:
            for index, (entry, names) in enumerate(jobs):
                if stop.requested:
                    return [e.id for e, _ in jobs[index:]]
                progress.start_item(entry.id)
                item_id, error = _item_features(entry, names, extractors, out_dir, min_duration)
                if error:
                    bad[item_id] = error
                progress.update(1, bad=len(bad))
            return []
        context = get_context("spawn")
        with ProcessPoolExecutor(num_workers, mp_context=context, initializer=init_worker,
                                 initargs=(extractors,)) as pool:
            futures = {pool.submit(_worker_item, entry, names, out_dir, min_duration): entry.id for entry, names in jobs}
            finished = set()
            for future in as_completed(futures):
                try:
                    item_id, error = future.result()
                except BrokenProcessPool as err:  # a worker died (e.g. killed for memory): the item is reported
                    item_id, error = futures[future], f"worker crashed: {err}"
                except CancelledError:
                    continue
                finished.add(item_id)
                if error:
                    bad[item_id] = error
                progress.update(1, bad=len(bad))
                if stop.requested:  # running items finish; queued ones are dropped
                    pool.shutdown(wait=True, cancel_futures=True)
                    finished.update(futures[f] for f in futures if f.done() and not f.cancelled())
                    return [e.id for e, _ in jobs if e.id not in finished]
    return []


# --------------------------------------------------------------------------- batched extractors (here)
def _batch(extractor: FeatureExtractor, entries: List[ManifestEntry], out_dir: Path, min_duration: float) -> None:
    wavs = [load_audio(e.path, extractor.sample_rate, min_duration=min_duration) for e in entries]
    values = extractor.extract_batch(wavs)
    if len(values) != len(entries):
        raise FeatureError(f"{extractor.name}: extract_batch returned {len(values)} tensors for {len(entries)} inputs")
    for entry, value in zip(entries, values):
        save_feature(out_dir, extractor.name, entry.id, value, extractor.storage_dtype)


def _run_batched(extractor: FeatureExtractor, entries: List[ManifestEntry], out_dir: Path, batch_size: int,
                 min_duration: float, bad: Dict[str, str], stop: StopOnSignal, quiet: bool = False) -> List[str]:
    """One batched feature for ``entries``; returns the ids not started because a signal stopped the run."""
    ordered = sorted(entries, key=lambda e: (e.duration, e.id))  # similar lengths per batch, less padding
    chunks = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    with Progress(len(ordered), extractor.name, unit="items", quiet=quiet) as progress:
        for index, chunk in enumerate(chunks):
            if stop.requested:
                return [e.id for c in chunks[index:] for e in c]
            progress.start_item(chunk[0].id)
            try:
                _batch(extractor, chunk, out_dir, min_duration)
            except _ITEM_ERRORS:
                for entry in chunk:  # isolate the culprit(s)
                    try:
                        _batch(extractor, [entry], out_dir, min_duration)
                    except _ITEM_ERRORS as err:
                        bad[entry.id] = _reason(err, extractor.name)
            progress.update(len(chunk), bad=len(bad))
    return []


# --------------------------------------------------------------------------- driver
def check_unique(entries: Sequence[ManifestEntry], extractors: Sequence[FeatureExtractor], allow_none: bool = False) -> None:
    seen = set()
    for entry in entries:
        if entry.id in seen:
            raise ValueError(f"item id {entry.id!r} appears twice (ids name feature files; check the manifests)")
        seen.add(entry.id)
    names = [x.name for x in extractors]
    if len(set(names)) != len(names) or not (names or allow_none):
        raise ValueError(f"features must be distinct{'' if allow_none else ' and at least one'}, got {names}")


def features_to_do(entries: Sequence[ManifestEntry], extractors: Sequence[FeatureExtractor], out_dir: Path,
                   overwrite: bool, skipped: List[str]) -> Dict[str, Tuple[str, ...]]:
    """Item id -> the features it still lacks (all of them with ``overwrite``); ids lacking none go to
    ``skipped``."""
    todo: Dict[str, Tuple[str, ...]] = {}
    for entry in entries:
        missing = tuple(x.name for x in extractors
                        if overwrite or not is_valid_feature_file(feature_path(out_dir, x.name, entry.id)))
        if missing:
            todo[entry.id] = missing
        else:
            skipped.append(entry.id)
    return todo


def _run_extractors(todo: Mapping[str, Tuple[str, ...]], entries: Sequence[ManifestEntry],
                    extractors: Sequence[FeatureExtractor], out_dir: Path, num_workers: int, batch_size: int,
                    min_duration: float, bad: Dict[str, str], stop: StopOnSignal, quiet: bool) -> List[str]:
    """The per-item extractors over their items (in ``num_workers`` processes), then each batched one over the
    items not yet bad; returns the ids left when ``stop`` was requested (failures land in ``bad``)."""
    by_id = {e.id: e for e in entries}
    per_item = {x.name: x for x in extractors if not x.batched}
    jobs = [(by_id[i], tuple(n for n in names if n in per_item)) for i, names in todo.items()]
    left = _run_per_item([(e, n) for e, n in jobs if n], per_item, out_dir, num_workers, min_duration, bad,
                         stop, quiet)
    for extractor in (x for x in extractors if x.batched):
        wanted = [by_id[i] for i, names in todo.items() if extractor.name in names and i not in bad]
        if wanted and not stop.requested:
            left += _run_batched(extractor, wanted, out_dir, max(1, batch_size), min_duration, bad, stop, quiet)
        elif wanted:
            left += [e.id for e in wanted]
    return left


def _stopped(report: ExtractionReport, exit_code: Optional[int], todo: Mapping[str, Tuple[str, ...]],
             bad: Dict[str, str], left: Sequence[str], out_dir: Path) -> ExtractionReport:
    """The report of a run stopped by a signal: the shard stays unfinished, ``not_started`` lists the items
    left or still lacking a feature file."""
    report.stopped = exit_code
    report.not_started = sorted(set(left) | {i for i, names in todo.items() if i not in bad and any(
        not is_valid_feature_file(feature_path(out_dir, n, i)) for n in names)})
    report.bad = bad
    report.done = [i for i in todo if i not in bad and i not in set(report.not_started)]
    return report


def extract_features(
    entries: Sequence[ManifestEntry],
    out_dir: str | os.PathLike,
    extractors: Sequence[FeatureExtractor],
    num_workers: int = 1,
    batch_size: int = 4,
    min_duration: float = 0.1,
    overwrite: bool = False,
    shard: Shard = Shard(),
    run_id: Optional[str] = None,
    quiet: bool = False,
) -> ExtractionReport:
    """Extract every extractor's feature for this shard's share of ``entries`` into ``out_dir``.

    A single-shard run merges at the end (``bad_items.tsv``, ``index.json``); with several shards call
    :func:`processors.data.shards.merge_shards` once all have finished. SIGINT/SIGTERM stop after the running
    items: the report then has ``stopped`` (130/143) and ``not_started``, and the shard is left unfinished (a
    rerun does the rest).
    """
    out_dir = Path(out_dir)
    check_unique(entries, extractors)
    descriptions = [x.describe() for x in extractors]
    for description in descriptions:
        check_feature_settings(out_dir, description, overwrite)
    run_id = run_id or run_stamp()
    report = ExtractionReport(job=job_id(entries, descriptions), shard=shard)
    mine = shard.select(entries)
    progress = ShardReport(out_dir, report.job, shard, run_id, descriptions, len(mine))
    progress.start()

    todo = features_to_do(mine, extractors, out_dir, overwrite, report.skipped)
    logger.info("features %s, %s: %d of %s to do, %d already done -> %s", ",".join(d["name"] for d in descriptions),
                shard.tag, len(todo), plural(len(mine), "item"), len(report.skipped), out_dir)
    bad: Dict[str, str] = {}
    with StopOnSignal("the running items") as stop:
        left = _run_extractors(todo, mine, extractors, out_dir, num_workers, batch_size, min_duration, bad, stop,
                               quiet)
    if stop.requested:
        return _stopped(report, stop.exit_code, todo, bad, left, out_dir)
    report.bad = bad
    report.done = [i for i in todo if i not in bad]
    paths = {e.id: e.path for e in mine}
    report.bad_items_path = progress.finish(len(report.done), len(report.skipped), bad, paths)
    if bad:
        logger.warning("%s skipped; reasons in %s", plural(len(bad), "bad item"), report.bad_items_path)
    logger.info("%s done: %d computed, %d skipped (already done), %d bad", shard.tag, len(report.done),
                len(report.skipped), len(bad))
    if shard.count == 1:
        report.merged = merge_shards(out_dir, entries, descriptions, run_id)
    return report
