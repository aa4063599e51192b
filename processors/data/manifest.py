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

**One JSONL reader, one relative-path rule.** Every JSON-lines file Echelon reads (manifests, ``echelon-infer
--jobs`` files, evaluation reference manifests, benchmark lists) goes through :func:`read_jsonl`: one JSON object
per non-empty line, the required keys checked with the file and line named, and every *relative* file path in a
path field (``path``, ``prompt``) resolved against **the folder of the JSONL file itself** — never the current
directory — so a manifest and its audio can move together. Absolute paths stay as they are.

:func:`split_entries` makes seeded, deterministic train/valid/test splits (independent of input order), and
:func:`write_manifest` writes atomically (:func:`utils.io.atomic_write_text`, re-exported here).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from utils.io import atomic_write_text
from utils.wording import agree, plural

__all__ = ["ManifestEntry", "ManifestError", "read_jsonl", "read_manifest", "write_manifest", "split_entries", "safe_id", "atomic_write_text"]

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


def check_usable(source: object, kept: int, skipped: Sequence[Tuple[str, str]], what: str = "item") -> None:
    """A dataset built from ``source``: log the rows it skipped ((id, reason) pairs) and refuse an empty one."""
    if skipped:
        logging.getLogger(__name__).warning("%s: skipped %s, e.g. %s", source, plural(len(skipped), what), skipped[0])
    if not kept:
        raise ManifestError(f"{source}: no usable {what} ({len(skipped)} skipped, e.g. {list(skipped[:1])})")


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


def read_jsonl(path: str | os.PathLike, required: Sequence[str] = ("id",),
               path_keys: Sequence[str] = ("path", "prompt")) -> List[Dict[str, Any]]:  # fmt: skip
    """The rows of a JSON-lines file (see the module doc for the relative-path rule): each a JSON object with the
    ``required`` keys; string values of ``path_keys`` that are relative paths become ``<file's folder>/<value>``.
    A missing file or a bad line raises :class:`ManifestError` naming the file and line."""
    return [row for _, row in numbered_jsonl(path, required, path_keys)]


def numbered_jsonl(path: str | os.PathLike, required: Sequence[str] = ("id",),
                   path_keys: Sequence[str] = ("path", "prompt")) -> List[Tuple[int, Dict[str, Any]]]:  # fmt: skip
    """:func:`read_jsonl` with each row's line number (for callers that check more and name the line)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{path}:{number}: not valid JSON: {err.msg}") from err
        missing = [k for k in required if k not in row] if isinstance(row, dict) else list(required)
        if missing:
            raise ManifestError(f"{path}:{number}: a row needs {', '.join(map(repr, required))} (missing "
                                f"{', '.join(map(repr, missing))})")
        for key in path_keys:
            if isinstance(row.get(key), str) and row[key] and not Path(row[key]).is_absolute():
                row[key] = str(path.parent / row[key])
        rows.append((number, row))
    return rows


def read_manifest(path: str | os.PathLike) -> List[ManifestEntry]:
    """Read a JSONL manifest (:func:`read_jsonl`: relative audio paths are relative to the manifest's folder)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    entries, seen = [], set()
    for number, row in numbered_jsonl(path, ("id", "path"), ("path",)):
        unknown = set(row) - set(FIELDS)
        if unknown:
            raise ManifestError(f"{path}:{number}: unknown {agree(len(unknown), 'field', 'fields')} {sorted(unknown)}; "
                                f"expected {list(FIELDS)}")
        extra = row.get("extra", {})
        if not isinstance(extra, dict):
            raise ManifestError(f"{path}:{number}: 'extra' must be a JSON object, got {type(extra).__name__}")
        item_id = str(row["id"])
        if item_id in seen:
            raise ManifestError(f"{path}:{number}: duplicate id {item_id!r}")
        seen.add(item_id)
        entries.append(
            ManifestEntry(
                id=item_id,
                path=str(row["path"]),
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
    accepts no speaker but an empty/0 one), else a name's position in ``speakers`` or an integer id below
    ``n_speakers`` (ids are accepted whether or not the speakers have names)."""
    if not has_embedding:
        if speaker not in (None, "", 0, "0"):
            raise ValueError(f"this model has a single speaker; got speaker {speaker!r}")
        return None
    if speaker is None or speaker == "":
        raise ValueError(f"this model has {n_speakers} speakers: give a speaker (name or id)")
    if speakers and str(speaker) not in speakers:
        try:
            sid = int(speaker)
        except ValueError:
            raise ValueError(f"unknown speaker {speaker!r}; known: {list(speakers)[:10]}") from None
        if not 0 <= sid < n_speakers:
            raise ValueError(f"speaker id {sid} outside [0, {n_speakers})")
        return sid
    return speaker_index(str(speaker), speakers, n_speakers)
