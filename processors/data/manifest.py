"""One manifest format for every corpus: JSON lines with ``id, path, speaker, text, duration, sample_rate``
and an optional ``extra``.

* ``id`` — unique, filesystem-safe (it names feature files ``<features>/<kind>/<id>.pt``);
* ``path`` — audio file, written relative to the manifest's folder when it lies below it, absolute otherwise;
  readers resolve relative paths against the manifest's folder;
* ``speaker`` — corpus speaker label (string); ``text`` — transcript or ``""``;
* ``duration`` (s) and ``sample_rate`` (Hz) of the file as stored (read from the header);
* ``extra`` — optional free-form JSON object for what a model or tool adds per item (e.g. per-phoneme
  durations from an aligner: schema in :mod:`processors.data.durations`); it round-trips unchanged and is
  omitted when empty.

Every other field is an error naming the file and line (a typo must not pass silently).

:func:`split_entries` makes seeded, deterministic train/valid/test splits (independent of input order), and
:func:`write_manifest` writes atomically (:func:`utils.io.atomic_write_text`, re-exported here).
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from utils.io import atomic_write_text

__all__ = ["ManifestEntry", "ManifestError", "read_manifest", "write_manifest", "split_entries", "safe_id", "atomic_write_text"]

FIELDS = ("id", "path", "speaker", "text", "duration", "sample_rate", "extra")
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]+")


class ManifestError(ValueError):
    """A manifest file or row is malformed; the message names the file and line."""


@dataclass
class ManifestEntry:
    id: str
    path: str
    speaker: str
    text: str
    duration: float
    sample_rate: int
    extra: Dict[str, Any] = field(default_factory=dict)


def safe_id(*parts: str) -> str:
    """Join parts with ``_`` and replace anything outside ``[A-Za-z0-9._-]`` (ids name files)."""
    joined = "_".join(p for p in parts if p)
    return _UNSAFE.sub("-", joined).strip("-") or "item"


def _relative_if_below(path: str, folder: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(folder)).as_posix()
    except ValueError:
        return str(absolute)


def write_manifest(entries: Iterable[ManifestEntry], path: str | os.PathLike) -> Path:
    """Write JSONL atomically; ids must be unique."""
    path = Path(path)
    lines, seen = [], set()
    for entry in entries:
        if entry.id in seen:
            raise ManifestError(f"{path}: duplicate id {entry.id!r}")
        seen.add(entry.id)
        row = asdict(entry)
        row["path"] = _relative_if_below(entry.path, path.parent)
        if not row["extra"]:
            del row["extra"]
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def read_manifest(path: str | os.PathLike) -> List[ManifestEntry]:
    """Read a JSONL manifest; relative paths become paths relative to the current directory."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    entries, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{path}:{number}: not valid JSON: {err}") from err
        if not isinstance(row, dict) or "id" not in row or "path" not in row:
            raise ManifestError(f"{path}:{number}: a manifest row needs at least 'id' and 'path'")
        unknown = set(row) - set(FIELDS)
        if unknown:
            raise ManifestError(f"{path}:{number}: unknown field(s) {sorted(unknown)}; expected {list(FIELDS)}")
        extra = row.get("extra", {})
        if not isinstance(extra, dict):
            raise ManifestError(f"{path}:{number}: 'extra' must be a JSON object, got {type(extra).__name__}")
        item_id = str(row["id"])
        if item_id in seen:
            raise ManifestError(f"{path}:{number}: duplicate id {item_id!r}")
        seen.add(item_id)
        audio = Path(row["path"])
        entries.append(
            ManifestEntry(
                id=item_id,
                path=str(audio if audio.is_absolute() else path.parent / audio),
                speaker=str(row.get("speaker", "") or ""),
                text=str(row.get("text", "") or ""),
                duration=float(row.get("duration") or 0.0),
                sample_rate=int(row.get("sample_rate") or 0),
                extra=extra,
            )
        )
    return entries


def _count(amount: float, total: int) -> int:
    """``amount`` < 1 is a fraction of ``total`` (at least 1 when positive), otherwise a count."""
    if amount < 0:
        raise ValueError(f"split size must be >= 0, got {amount}")
    if amount < 1:
        return max(1, round(amount * total)) if amount > 0 else 0
    return int(amount)


def split_entries(
    entries: Sequence[ManifestEntry], valid: float = 0.05, test: float = 0.05, seed: int = 1234
) -> Dict[str, List[ManifestEntry]]:
    """Seeded train/valid/test split: the same entries and seed give the same split in any input order.

    ``valid``/``test`` below 1 are fractions, otherwise counts.  Each split is sorted by id.
    """
    ordered = sorted(entries, key=lambda e: e.id)
    n_valid, n_test = _count(valid, len(ordered)), _count(test, len(ordered))
    if n_valid + n_test >= len(ordered):
        raise ValueError(
            f"cannot hold out {n_valid} valid + {n_test} test items from {len(ordered)}: nothing left to train on"
        )
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    valid_ids = {e.id for e in shuffled[:n_valid]}
    test_ids = {e.id for e in shuffled[n_valid : n_valid + n_test]}
    return {
        "train": [e for e in ordered if e.id not in valid_ids and e.id not in test_ids],
        "valid": [e for e in ordered if e.id in valid_ids],
        "test": [e for e in ordered if e.id in test_ids],
    }


def speaker_index(speaker: str, speakers: Sequence[str], n_speakers: int) -> int:
    """Speaker label -> id of a model with ``n_speakers``: its position in ``speakers`` (a config's speaker list)
    when one is given, else an integer label below ``n_speakers`` (official filelists); 0 for one speaker."""
    if n_speakers <= 1:
        return 0
    if speakers:
        if speaker not in speakers:
            raise ValueError(f"unknown speaker {speaker!r}: not in data.speakers ({len(speakers)} listed)")
        return list(speakers).index(speaker)
    try:
        sid = int(speaker)
    except ValueError as err:
        raise ValueError(f"speaker {speaker!r}: list the speakers in data.speakers or use integer ids") from err
    if not 0 <= sid < n_speakers:
        raise ValueError(f"speaker id {sid} outside [0, {n_speakers})")
    return sid


def model_speaker_id(speaker: Any, speakers: Sequence[str], n_speakers: int, has_embedding: bool) -> Optional[int]:
    """The speaker id an inference call passes to a model: None for a model without a speaker embedding (which
    accepts no speaker but an empty/0 one), else :func:`speaker_index` of the required name or integer label."""
    if not has_embedding:
        if speaker not in (None, "", 0, "0"):
            raise ValueError(f"this model has a single speaker; got speaker {speaker!r}")
        return None
    if speaker is None or speaker == "":
        raise ValueError(f"this model has {n_speakers} speakers: give a speaker (name or id)")
    return speaker_index(str(speaker), speakers, n_speakers)
