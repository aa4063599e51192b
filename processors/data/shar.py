"""Features as Lhotse Shar shards: write them (resumable per shard, atomic, split across processes) and list them.

``<out_dir>/shar/`` is a plain Lhotse Shar folder (nothing else in it, so ``CutSet.from_shar(in_dir=...)`` and
any Lhotse tool read it): per shard ``k`` (``%06d``), ``cuts.k.jsonl.gz`` (the CutSet manifest: id, duration,
one supervision with ``text``, ``speaker`` and ``custom.extra``), ``recording.k.tar`` (the audio, flac or wav)
and one ``<feature>.k.tar`` per feature (numpy arrays in the extractor's storage dtype) — Lhotse's own format
(:class:`lhotse.shar.SharWriter`), read back with :meth:`lhotse.CutSet.from_shar`.  A time-indexed feature (mel,
linear, F0, SSL, codec codes, latents: every extractor with a ``frame_shift``) is a ``TemporalArray`` stored
time-first (``temporal_dim`` 0, Lhotse's own layout for features: its readers slice axis 0) with its frame shift
in seconds, so ``cut.truncate``, windowing and ``collate_custom_field`` keep it in step with the audio; Lhotse
keeps ``round(duration / frame_shift)`` steps of it (at most the stored ones).  Echelon's readers move the time
axis back last (:func:`processors.data.shar_reader.cut_array`).  Each feature's frame shift is also in the
shard records' ``layout.frame_shifts`` (null: a plain ``Array``).  Echelon's
record of each shard, ``<out_dir>/shards/shard.k.json`` (the job, the shard's item count and seconds, its bad
items), sits beside it with ``index.json``, ``bad_items.tsv`` and ``runs/``.  That file is written last, by
an atomic rename, after the shard's files were renamed into place from a private temporary folder: a shard
with its record is complete, and a rerun skips it (idempotent; another job's shards are refused).

* **Layout**: items are ordered by a hash of their id (a fixed pseudo-random order: shards mix speakers and
  lengths) and cut into shards of ``shard_size``; the layout depends on the items and the size only.
* **Processes**: process ``i/n`` (``--shard i/n`` or ``RANK``/``WORLD_SIZE``) writes shards ``k ≡ i (mod n)``,
  so any number of processes or machines share the work without talking; :func:`merge_shar` checks that every
  shard is there and writes ``bad_items.tsv`` and ``index.json`` as the per-item extraction does.
* **Features**: computed by the registered extractors (:func:`write_shar` with ``extractors``), or read from an
  existing per-item feature folder (``features_dir``: an old extraction converted to shards).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from processors.audio import load_audio
from processors.data.extract import _ITEM_ERRORS, WORKER_EXTRACTORS, ItemFailure, _reason, compute_item, init_worker
from processors.data.lhotse_io import supervision_text
from processors.data.manifest import ManifestEntry
from processors.data.shards import (BAD_ITEMS, INDEX, Shard, ShardError, ShardReport, _bad_rows, _fresh_path,
                                    _update_current_bad_items, _update_index, job_id, run_stamp)
from processors.features.base import FeatureError, FeatureExtractor
from processors.features.store import FEATURE_INFO, as_storage, load_feature
from utils.interrupt import StopOnSignal
from utils.io import atomic_write_text, make_temp_dir
from utils.wording import agree

__all__ = ["SharOptions", "StoredFeature", "stored_features", "SharReport", "ShardInfo", "CutMeta", "write_shar", "merge_shar", "list_shards", "shard_layout",
           "read_cut_metadata"]

log = logging.getLogger(__name__)
AUDIO_FORMATS = ("flac", "wav")
SHAR, RECORDS = "shar", "shards"  # <out_dir>/shar: the Lhotse Shar files; <out_dir>/shards: Echelon's records


@dataclass(frozen=True)
class SharOptions:
    shard_size: int = 1000  # items per shard
    audio_format: str = "flac"  # flac: 16-bit, about half the size; wav: float32, exact
    audio_rate: Optional[int] = None  # Hz of the stored audio; default: the first feature's rate

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise ShardError(f"--shard_size must be >= 1, got {self.shard_size}")
        if self.audio_format not in AUDIO_FORMATS:
            raise ShardError(f"--audio_format {self.audio_format!r}: expected one of {', '.join(AUDIO_FORMATS)}")


@dataclass
class SharReport:
    job: str
    written: List[int] = field(default_factory=list)  # shard indices this run wrote
    skipped: List[int] = field(default_factory=list)  # already complete
    bad: Dict[str, str] = field(default_factory=dict)
    bad_items_path: Optional[Path] = None
    merged: Optional[Dict[str, Any]] = None
    stopped: Optional[int] = None  # 130/143 when SIGINT/SIGTERM stopped the run (after a complete shard)
    not_started: List[int] = field(default_factory=list)  # shards a stopped run left for the rerun


@dataclass(frozen=True)
class ShardInfo:
    """One complete shard: its number, item count, total seconds and a path per field (``cuts``, ...)."""

    index: int
    items: int
    seconds: float
    files: Dict[str, Path]


def _info_path(out_dir: Path, index: int) -> Path:
    return out_dir / RECORDS / f"shard.{index:06d}.json"


def _hash_key(entry: ManifestEntry) -> str:
    return hashlib.sha1(entry.id.encode("utf-8")).hexdigest()


def shard_layout(entries: Sequence[ManifestEntry], shard_size: int) -> List[List[ManifestEntry]]:
    """Items in id-hash order cut into shards of ``shard_size`` (the last may be smaller)."""
    ordered = sorted(entries, key=_hash_key)
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]


# --------------------------------------------------------------------------- values of one group of items
def _worker_compute(entry: ManifestEntry, names: Tuple[str, ...], min_duration: float, audio_rate: int):
    audio: Dict[int, np.ndarray] = {}
    try:
        audio[audio_rate] = load_audio(entry.path, audio_rate, min_duration=min_duration)
        return entry.id, audio[audio_rate], compute_item(entry, names, WORKER_EXTRACTORS, min_duration, audio)
    except ItemFailure as failure:
        return entry.id, None, failure.reason
    except _ITEM_ERRORS as err:
        return entry.id, None, _reason(err)


class _Values:
    """Audio and feature values of items, computed by extractors or read from a per-item feature folder."""

    def __init__(self, extractors: Sequence[FeatureExtractor], features_dir: Optional[Path], audio_rate: int,
                 min_duration: float, num_workers: int, batch_size: int) -> None:
        self.extractors = {x.name: x for x in extractors}
        self.features_dir = features_dir
        self.audio_rate, self.min_duration, self.batch_size = audio_rate, min_duration, max(1, batch_size)
        self.per_item = tuple(n for n, x in self.extractors.items() if not x.batched) if features_dir is None else ()
        self.pool = None
        if num_workers > 1 and self.per_item:
            self.pool = ProcessPoolExecutor(num_workers, mp_context=get_context("spawn"), initializer=init_worker,
                                            initargs=({n: self.extractors[n] for n in self.per_item},))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def group(self, entries: List[ManifestEntry], bad: Dict[str, str]) -> List[Tuple[ManifestEntry, np.ndarray, Dict]]:
        """(entry, audio, {feature: tensor}) of the good items, in order; the others go to ``bad``."""
        args = [(e, self.per_item, self.min_duration, self.audio_rate) for e in entries]
        if self.pool is not None:
            results = list(self.pool.map(_worker_compute, *zip(*args)))
        else:
            WORKER_EXTRACTORS.clear()
            WORKER_EXTRACTORS.update(self.extractors)
            results = [_worker_compute(*a) for a in args]
        good = []
        for entry, (_, wav, values) in zip(entries, results):
            if wav is None:
                bad[entry.id] = values
                continue
            if self.features_dir is not None:
                try:
                    values = {n: load_feature(self.features_dir, n, entry.id) for n in self.extractors}
                except _ITEM_ERRORS as err:
                    bad[entry.id] = _reason(err)
                    continue
            good.append((entry, wav, values))
        if self.features_dir is None:
            for extractor in (x for x in self.extractors.values() if x.batched):
                good = self._batched(extractor, good, bad)
        return good

    def _batched(self, extractor: FeatureExtractor, good, bad: Dict[str, str]):
        kept = []
        for start in range(0, len(good), self.batch_size):
            chunk = good[start : start + self.batch_size]
            try:
                kept += self._run_batch(extractor, chunk)
            except _ITEM_ERRORS:
                for item in chunk:  # isolate the culprit(s)
                    try:
                        kept += self._run_batch(extractor, [item])
                    except _ITEM_ERRORS as err:
                        bad[item[0].id] = _reason(err, extractor.name)
        return kept

    def _run_batch(self, extractor: FeatureExtractor, items):
        wavs = [load_audio(e.path, extractor.sample_rate, min_duration=self.min_duration) for e, _, _ in items]
        with torch.no_grad():
            outs = extractor.extract_batch(wavs)
        if len(outs) != len(items):
            raise FeatureError(f"{extractor.name}: extract_batch returned {len(outs)} tensors for {len(items)} inputs")
        for (_, _, values), out in zip(items, outs):
            values[extractor.name] = out
        return items


# --------------------------------------------------------------------------- cuts and one shard
@dataclass(frozen=True)
class ArrayLayout:
    """How one feature is stored in the shards: its dtype, and the seconds per step of its time axis (Echelon's
    last axis), None for a feature that is not time-indexed (or whose step nobody recorded): a plain Array."""

    dtype: torch.dtype
    frame_shift: Optional[float]

    @classmethod
    def of(cls, extractor) -> "ArrayLayout":
        return cls(extractor.storage_dtype, extractor.frame_shift)

    def attach(self, cut, name: str, value: torch.Tensor):
        """``cut`` with ``value`` attached under ``name``: a ``TemporalArray`` stored time-first (Lhotse's readers
        slice axis 0 when a cut is truncated or windowed) when the feature has a frame shift."""
        array = as_storage(value, self.dtype, f"{name}/{cut.id}").numpy()
        if self.frame_shift is None:
            return cut.attach_tensor(name, array)
        return cut.attach_tensor(name, np.ascontiguousarray(np.moveaxis(array, -1, 0)), frame_shift=self.frame_shift,
                                 temporal_dim=0)


def _cut(entry: ManifestEntry, wav: np.ndarray, rate: int, values: Dict[str, torch.Tensor],
         layouts: Dict[str, ArrayLayout]):
    from lhotse import MonoCut, Recording, SupervisionSegment
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, wav, rate, format="WAV", subtype="FLOAT")
    recording = Recording.from_bytes(buffer.getvalue(), recording_id=entry.id)
    supervision = SupervisionSegment(id=entry.id, recording_id=entry.id, start=0.0, duration=recording.duration,
                                     text=entry.text, speaker=entry.speaker, custom={"extra": entry.extra})
    cut = MonoCut(id=entry.id, start=0.0, duration=recording.duration, channel=0, recording=recording,
                  supervisions=[supervision])
    for name, value in values.items():
        cut = layouts[name].attach(cut, name, value)
    return cut


def _write_shard(out_dir: Path, index: int, items, fields: Dict[str, str], rate: int,
                 layouts: Dict[str, ArrayLayout]) -> Dict[str, str]:
    """Write one shard's files through a private folder, then rename them into ``out_dir``."""
    from lhotse.shar import SharWriter

    tmp = make_temp_dir(out_dir, prefix=f".tmp-shard.{index:06d}-")
    try:
        with SharWriter(str(tmp), fields=fields, shard_size=None, shard_suffix=f".{index:06d}") as writer:
            for entry, wav, values in items:
                writer.write(_cut(entry, wav, rate, values, layouts))
        files = {}
        (out_dir / SHAR).mkdir(exist_ok=True)
        for path in sorted(tmp.iterdir()):
            os.replace(path, out_dir / SHAR / path.name)
            files[path.name.split(".", 1)[0]] = path.name
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_info(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise ShardError(f"{path}: unreadable shard record ({err}); delete it to rewrite the shard") from None


@dataclass(frozen=True)
class StoredFeature:
    """A feature already extracted to a per-item folder: what ``write_shar(features_dir=...)`` needs of it
    (name, dtype, settings as recorded in ``<features_dir>/<name>/feature.json``), without loading any model."""

    name: str
    description: Dict[str, Any]
    batched: bool = False

    @property
    def storage_dtype(self) -> torch.dtype:
        return getattr(torch, str(self.description.get("dtype", "float32")))

    @property
    def sample_rate(self) -> int:
        return int(self.description.get("settings", {}).get("sample_rate", 0))

    @property
    def frame_shift(self) -> Optional[float]:
        """The registered extractor's reading of the description (its own step rule); None when unregistered."""
        from utils.registry import RegistryError, get

        try:
            return get("feature", self.name).frame_shift_of(self.description)
        except RegistryError:
            return FeatureExtractor.frame_shift_of(self.description)

    def describe(self) -> Dict[str, Any]:
        return self.description


def stored_features(features_dir: str | os.PathLike, names: Sequence[str]) -> List[StoredFeature]:
    """The named features of a per-item folder (each needs its ``feature.json``)."""
    found = []
    for name in names:
        info = Path(features_dir) / name / FEATURE_INFO
        if not info.is_file():
            raise ShardError(f"{features_dir}: no {name} features ({info} missing)")
        found.append(StoredFeature(name, json.loads(info.read_text(encoding="utf-8"))))
    return found


def write_shar(entries: Sequence[ManifestEntry], out_dir: str | os.PathLike, extractors: Sequence[FeatureExtractor],
               options: SharOptions = SharOptions(), *, features_dir: Optional[str | os.PathLike] = None,
               num_workers: int = 1, batch_size: int = 4, min_duration: float = 0.1, overwrite: bool = False,
               process: Shard = Shard(), run_id: Optional[str] = None) -> SharReport:
    """Write this process's shards of ``entries`` (audio + every extractor's feature) under ``out_dir``.

    With ``features_dir`` the features are read from that per-item folder (``extractors``: its
    :func:`stored_features`). A single-process run merges at the end; otherwise call :func:`merge_shar` when all are done.
    """
    out_dir = Path(out_dir)
    features_dir = Path(features_dir) if features_dir is not None else None
    if features_dir is not None:  # the stored features' own settings (feature.json checked), whatever was passed
        extractors = stored_features(features_dir, [x.name for x in extractors])
    rate = options.audio_rate or (extractors[0].sample_rate if extractors else 0)
    if rate <= 0:
        raise ShardError("the audio rate of the shards is unknown: pass --audio_rate")
    descriptions = [x.describe() for x in extractors]
    layouts = {x.name: ArrayLayout.of(x) for x in extractors}
    layout = {"name": "shar", "shard_size": options.shard_size, "audio_format": options.audio_format,
              "audio_rate": rate, "frame_shifts": {n: a.frame_shift for n, a in layouts.items()}}
    report = SharReport(job=job_id(entries, [*descriptions, layout]))
    shards = shard_layout(entries, options.shard_size)
    mine = [k for k in range(len(shards)) if k % process.count == process.index]
    run_id = run_id or run_stamp()
    progress = ShardReport(out_dir, report.job, process, run_id, descriptions, sum(len(shards[k]) for k in mine))
    progress.start()
    fields = {"recording": options.audio_format, **{x.name: "numpy" for x in extractors}}
    values = _Values(extractors, features_dir, rate, min_duration, num_workers, batch_size)
    try:
        with StopOnSignal("the current shard") as stop:
            report.not_started = _write_shards(out_dir, mine, shards, report, values, fields, rate, layouts,
                                               descriptions, layout, overwrite, stop)
        report.stopped = stop.exit_code
    finally:
        values.close()
    if report.stopped is not None:  # this process's record stays "running": the rerun finishes it
        return report
    paths = {e.id: e.path for e in entries}
    report.bad_items_path = progress.finish(len(report.written), len(report.skipped), report.bad, paths)
    if process.count == 1:
        report.merged = merge_shar(out_dir, entries, run_id)
    return report


def _write_shards(out_dir: Path, mine: List[int], shards, report: SharReport, values: _Values, fields, rate: int,
                  layouts, descriptions, layout, overwrite: bool, stop: StopOnSignal) -> List[int]:
    """Write the shards ``mine`` not yet complete; returns those left undone when a signal stopped the run."""
    for position, k in enumerate(mine):
        if stop.requested:
            return mine[position:]
        info = _read_info(_info_path(out_dir, k))
        if info is not None and not overwrite:
            if info.get("job") != report.job:
                raise ShardError(f"{_info_path(out_dir, k)} belongs to job {info.get('job')} (other items, "
                                 f"features or shard size): use a new --out_dir or --overwrite")
            report.skipped.append(k)
            report.bad.update(info.get("bad", {}))
            continue
        bad: Dict[str, str] = {}
        group = max(64, values.batch_size)
        items = [x for s in range(0, len(shards[k]), group) for x in values.group(shards[k][s : s + group], bad)]
        files = _write_shard(out_dir, k, items, fields, rate, layouts) if items else {}
        record = {"job": report.job, "index": k, "num_shards": len(shards), "items": len(items),
                  "seconds": round(sum(len(w) for _, w, _ in items) / rate, 3), "files": files, "bad": bad,
                  "features": descriptions, "layout": layout}
        atomic_write_text(_info_path(out_dir, k), json.dumps(record, indent=1) + "\n")
        report.written.append(k)
        report.bad.update(bad)
        log.info("shard %d of %d: %d items, %d bad", k, len(shards), len(items), len(bad))
    return []


def merge_shar(out_dir: str | os.PathLike, entries: Sequence[ManifestEntry], run_id: Optional[str] = None) -> Dict[str, Any]:
    """Check every shard of the layout is complete; write ``bad_items.tsv`` and ``index.json``."""
    out_dir = Path(out_dir)
    records = [_read_info(p) for p in sorted((out_dir / RECORDS).glob("shard.*.json"))]
    if not records:
        raise ShardError(f"no shard under {out_dir}: were the shards written there?")
    count, job = int(records[0]["num_shards"]), records[0]["job"]
    present = {int(r["index"]) for r in records if r["job"] == job}
    missing = [k for k in range(count) if k not in present]
    if missing or len(present) != len(records):
        raise ShardError(f"cannot merge {out_dir}: {agree(len(missing), 'shard', 'shards')} {missing[:10]} of {count} not "
                         "written yet"
                         if missing else f"{out_dir}: shards of different jobs; use one folder per job")
    bad = {i: reason for r in records for i, reason in r.get("bad", {}).items()}
    paths = {e.id: e.path for e in entries}
    merged = _fresh_path(out_dir / "runs" / job, f"bad_items.merged.{run_id or run_stamp()}", ".tsv")
    atomic_write_text(merged, _bad_rows(bad, paths))
    _update_current_bad_items(out_dir / BAD_ITEMS, set(paths), bad, paths)
    summary = {"format": "shar", "features": records[0]["features"], "layout": records[0]["layout"],
               "items": sum(int(r["items"]) for r in records) + len(bad), "done": sum(int(r["items"]) for r in records),
               "bad": len(bad), "num_shards": count, "seconds": round(sum(float(r["seconds"]) for r in records), 3),
               "bad_items": merged.relative_to(out_dir).as_posix()}
    _update_index(out_dir / INDEX, job, summary)
    return {"job": job, **summary}


def shar_finished(out_dir: str | os.PathLike) -> bool:
    """Whether every shard of the layout in ``out_dir`` has its record."""
    records = [_read_info(p) for p in (Path(out_dir) / RECORDS).glob("shard.*.json")]
    return bool(records) and len({int(r["index"]) for r in records}) == int(records[0]["num_shards"])


def list_shards(shar_dir: str | os.PathLike) -> List[ShardInfo]:
    """The complete shards of ``shar_dir``: a folder written by :func:`write_shar` (its records say which shards
    are complete) or any Lhotse Shar folder (``cuts.k.jsonl.gz`` and ``<field>.k.tar``; item counts then read
    from the cuts). Refuses a partial set."""
    shar_dir = Path(shar_dir)
    records = [_read_info(p) for p in sorted((shar_dir / RECORDS).glob("shard.*.json"))]
    if records:
        count = int(records[0]["num_shards"])
        present = {int(r["index"]): r for r in records}
        missing = [k for k in range(count) if k not in present]
        if missing:
            raise ShardError(f"{shar_dir}: {agree(len(missing), 'shard', 'shards')} {missing[:10]} of {count} missing "
                             "(extraction unfinished?)")
        return [ShardInfo(k, int(r["items"]), float(r["seconds"]), {f: shar_dir / SHAR / n for f, n in r["files"].items()})
                for k, r in sorted(present.items()) if int(r["items"]) > 0]
    from lhotse import CutSet

    shards = []
    for cuts in sorted(shar_dir.glob("cuts.*.jsonl.gz")):
        suffix = cuts.name[len("cuts") : -len(".jsonl.gz")]
        files = {"cuts": cuts, **{p.name[: -len(suffix + ".tar")]: p for p in shar_dir.glob(f"*{suffix}.tar")}}
        durations = [c.duration for c in CutSet.from_jsonl_lazy(cuts)]
        shards.append(ShardInfo(int(suffix.strip(".")), len(durations), float(sum(durations)), files))
    if not shards:
        raise ShardError(f"{shar_dir}: no shards (neither {RECORDS}/shard.*.json nor cuts.*.jsonl.gz)")
    return shards


@dataclass(frozen=True)
class CutMeta:
    """What bucketing and item filters need of a cut: id, seconds (all Lhotse's samplers read), speaker, and the
    text a model trains on (:func:`~processors.data.lhotse_io.supervision_text`: the recipe's normalised text
    when the supervision has one, as ``--from_lhotse`` and ``lhotse:<recipe>`` manifests hold)."""

    id: str
    duration: float
    text: str = ""
    speaker: str = ""

    @classmethod
    def of(cls, cut) -> "CutMeta":
        sup = cut.supervisions[0] if cut.supervisions else None
        return cls(cut.id, float(cut.duration), supervision_text(sup.text, sup.custom) if sup else "",
                   (sup.speaker or "") if sup else "")


def read_cut_metadata(cuts_path: str | os.PathLike) -> List[CutMeta]:
    """Ids and durations of a shard's ``cuts.k.jsonl.gz``, in order, read as plain JSON (no Lhotse objects:
    ~50x faster, which matters when every rank plans its epoch from the metadata)."""
    import gzip

    def meta(row: Dict[str, Any]) -> CutMeta:
        sup = (row.get("supervisions") or [{}])[0]
        return CutMeta(row["id"], float(row["duration"]), supervision_text(sup.get("text"), sup.get("custom")),
                       sup.get("speaker") or "")

    with gzip.open(cuts_path, "rt", encoding="utf-8") as handle:
        return [meta(row) for row in map(json.loads, handle) if row]

