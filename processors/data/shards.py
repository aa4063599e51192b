"""Sharded feature extraction: which items a shard owns, what each shard reports, and the merge step.

* A **job** is one set of items and one set of features (name, settings, dtype); its id is a hash of both,
  so every process and machine given the same manifests and ``--features`` agrees on it without talking.
* **Shard** ``i/n`` owns items ``i, i + n, i + 2n, ...`` of the items sorted by id: disjoint, together all
  items, the same on every machine.  ``RANK``/``WORLD_SIZE`` (set by ``torchrun`` and ``accelerate launch``)
  give the shard when ``--shard`` is not passed.
* Each shard run writes ``<out_dir>/runs/<job>/shard-<i>-of-<n>.json`` (status ``running`` then ``finished``,
  counts, bad items with reasons) and its own bad-item list ``bad_items.shard-<i>-of-<n>.<run_id>.tsv``, which
  no later run overwrites.
* **Merge** checks that all n shards finished and that every item not listed bad has all its files, then writes
  ``runs/<job>/bad_items.merged.<run_id>.tsv``, the current ``<out_dir>/bad_items.tsv`` (this job's rows replaced,
  other items' rows kept) and ``<out_dir>/index.json`` (a summary per job).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from processors.data.manifest import ManifestEntry
from processors.features.store import feature_path, is_valid_feature_file
from utils.io import atomic_write_text
from utils.wording import agree, plural

__all__ = ["Shard", "ShardError", "shard_from_env", "local_rank_from_env", "job_id", "run_stamp", "ShardReport",
           "merge_shards", "shards_finished", "BAD_ITEMS", "INDEX"]

BAD_ITEMS = "bad_items.tsv"
INDEX = "index.json"


class ShardError(ValueError):
    """A malformed shard spec, or a merge that cannot complete (the message names the shard or item)."""


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ShardError(f"shard {self.index}/{self.count}: need 0 <= index < count")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"i/n"`` (0-based index i of n shards)."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ShardError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
        return cls(index, count)

    @property
    def tag(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}"

    def select(self, entries: Sequence[ManifestEntry]) -> List[ManifestEntry]:
        """This shard's items: every count-th item of the id-sorted list, starting at index."""
        return sorted(entries, key=lambda e: e.id)[self.index :: self.count]


def shard_from_env(environ: Mapping[str, str] = os.environ) -> Optional[Shard]:
    """The shard of a process started by ``torchrun``/``accelerate launch`` (``RANK``, ``WORLD_SIZE``), else None."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        return Shard(int(environ["RANK"]), int(environ["WORLD_SIZE"]))
    except ValueError:
        raise ValueError(f"RANK={environ['RANK']!r} WORLD_SIZE={environ['WORLD_SIZE']!r} are not a valid shard") from None


def local_rank_from_env(environ: Mapping[str, str] = os.environ) -> Optional[int]:
    value = environ.get("LOCAL_RANK")
    return int(value) if value not in (None, "") else None


def job_id(entries: Sequence[ManifestEntry], descriptions: Sequence[Dict[str, Any]]) -> str:
    """Hash of the sorted item ids and the features' descriptions (name, settings, dtype)."""
    digest = hashlib.sha1()
    for item_id in sorted(e.id for e in entries):
        digest.update(item_id.encode("utf-8") + b"\n")
    digest.update(json.dumps(sorted(descriptions, key=lambda d: d["name"]), sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:12]


def run_stamp() -> str:
    """A run id unique per process and second: ``20260101T120000Z-<pid>``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _bad_rows(bad: Mapping[str, str], paths: Mapping[str, str]) -> str:
    return "".join(f"{i}\t{paths.get(i, '')}\t{reason}\n" for i, reason in sorted(bad.items()))


def _fresh_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem + suffix``, or with ``.1``, ``.2``... so an existing list is never overwritten."""
    path, n = folder / f"{stem}{suffix}", 0
    while path.exists():
        n += 1
        path = folder / f"{stem}.{n}{suffix}"
    return path


class ShardReport:
    """Progress file of one shard of one job (``runs/<job>/<shard tag>.json``)."""

    def __init__(self, out_dir: Path, job: str, shard: Shard, run_id: str, descriptions: List[Dict[str, Any]],
                 items: int) -> None:
        self.run_dir = Path(out_dir) / "runs" / job
        self.path = self.run_dir / f"{shard.tag}.json"
        self.data: Dict[str, Any] = {
            "job": job, "shard": shard.index, "num_shards": shard.count, "run_id": run_id, "status": "running",
            "started_at": _now(), "features": descriptions, "items": items,
        }

    def start(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    def finish(self, done: int, skipped: int, bad: Mapping[str, str], paths: Mapping[str, str]) -> Path:
        """Write this run's bad-item list (a new file) and mark the shard finished; returns the list's path."""
        shard = Shard(self.data["shard"], self.data["num_shards"])
        bad_path = _fresh_path(self.run_dir, f"bad_items.{shard.tag}.{self.data['run_id']}", ".tsv")
        atomic_write_text(bad_path, _bad_rows(bad, paths))
        self.data.update(status="finished", finished_at=_now(), done=done, skipped=skipped, bad=dict(bad),
                         bad_items=bad_path.name)
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")
        return bad_path


def _reports(run_dir: Path) -> Dict[int, Dict[str, Any]]:
    """Shard reports of a job, by shard index; refuses a mix of shard counts."""
    reports: Dict[int, Dict[str, Any]] = {}
    for path in sorted(run_dir.glob("shard-*-of-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ShardError(f"{path}: unreadable shard report ({err})") from None
        reports[int(data["shard"]) if "shard" in data else -1] = data
    counts = sorted({int(r.get("num_shards", 0)) for r in reports.values()})
    if len(counts) > 1:
        raise ShardError(f"{run_dir}: reports from runs with different shard counts {counts}; "
                         f"delete the reports of the layout you abandoned")
    return reports


def shards_finished(out_dir: Path, job: str, count: int) -> bool:
    reports = _reports(Path(out_dir) / "runs" / job)
    return all(reports.get(i, {}).get("status") == "finished" for i in range(count))


def merge_shards(out_dir: Path, entries: Sequence[ManifestEntry], descriptions: List[Dict[str, Any]],
                 run_id: Optional[str] = None) -> Dict[str, Any]:
    """Check all shards of the job finished and every good item has all its files; write the combined bad
    list, ``bad_items.tsv`` and ``index.json``.  Returns this job's summary (as stored in the index)."""
    out_dir = Path(out_dir)
    job = job_id(entries, descriptions)
    run_dir = out_dir / "runs" / job
    reports = _reports(run_dir)
    if not reports:
        raise ShardError(f"no shard report under {run_dir}: were the shards run with these manifests and features?")
    count = int(next(iter(reports.values()))["num_shards"])
    unfinished = [i for i in range(count) if reports.get(i, {}).get("status") != "finished"]
    if unfinished:
        states = ", ".join(f"{i} ({reports[i]['status']} since {reports[i]['started_at']})" if i in reports
                           else f"{i} (never started)" for i in unfinished)
        raise ShardError(f"cannot merge job {job}: {agree(len(unfinished), 'shard', 'shards')} {states} of {count} not "
                         "finished")
    for index, report in reports.items():
        expected = (len(entries) - index + count - 1) // count  # size of Shard(index, count).select(entries)
        if int(report["items"]) != expected:
            raise ShardError(f"{run_dir}: shard {index} processed {plural(int(report['items']), 'item')}, this "
                             f"manifest gives it {expected}")
    bad = {item: reason for report in reports.values() for item, reason in report.get("bad", {}).items()}
    names = [d["name"] for d in descriptions]
    missing = [(e.id, n) for e in entries if e.id not in bad for n in names
               if not is_valid_feature_file(feature_path(out_dir, n, e.id))]
    if missing:
        shown = ", ".join(f"{n}/{i}" for i, n in missing[:5])
        raise ShardError(f"cannot merge job {job}: {plural(len(missing), 'feature file')} missing or invalid although "
                         f"no shard listed the item as bad: {shown}")
    paths = {e.id: e.path for e in entries}
    merged = _fresh_path(run_dir, f"bad_items.merged.{run_id or run_stamp()}", ".tsv")
    atomic_write_text(merged, _bad_rows(bad, paths))
    _update_current_bad_items(out_dir / BAD_ITEMS, {e.id for e in entries}, bad, paths)
    summary = {"features": descriptions, "items": len(entries), "done": len(entries) - len(bad), "bad": len(bad),
               "num_shards": count, "bad_items": merged.relative_to(out_dir).as_posix(), "merged_at": _now()}
    _update_index(out_dir / INDEX, job, summary)
    return {"job": job, **summary}


def _update_current_bad_items(path: Path, ours: set, bad: Mapping[str, str], paths: Mapping[str, str]) -> None:
    """``bad_items.tsv`` is the current state: this job's items' rows replaced, other items' rows kept."""
    kept = []
    if path.is_file():
        kept = [line + "\n" for line in path.read_text(encoding="utf-8").splitlines()
                if line and line.split("\t", 1)[0] not in ours]
    atomic_write_text(path, "".join(kept) + _bad_rows(bad, paths))


def _update_index(path: Path, job: str, summary: Dict[str, Any]) -> None:
    index: Dict[str, Any] = {"jobs": {}}
    if path.is_file():
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ShardError(f"{path}: not valid JSON ({err}); delete it to rebuild") from None
    index.setdefault("jobs", {})[job] = summary
    index["latest"] = job
    atomic_write_text(path, json.dumps(index, indent=1, sort_keys=True) + "\n")
