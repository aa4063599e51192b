"""Pair generated audio with the reference manifest and the prompts, strictly by utterance id.

* Reference manifest: JSONL, one object per line with ``id``, ``path``, ``speaker``, ``text``, ``duration``,
  ``sample_rate`` (Echelon's manifest format; ``path`` may be absent for text-only test sets, and an optional
  ``prompt`` field names the prompt wav), read by the one JSONL reader
  (:func:`processors.data.manifest.read_jsonl`): relative paths are relative to the manifest's folder.
* Generated audio: every ``*.wav``/``*.flac``/``*.ogg`` under the directory (recursively); the id is the file
  name without extension.  Two files with the same id are an error.
* Prompt mapping (optional): a JSON object ``{"id": "prompt.wav", ...}`` or a two-column TSV/CSV
  (``id<TAB>path``); relative paths are relative to the mapping file's folder (the same rule).

Any mismatch between generated ids and manifest ids is an error that names the missing and the extra ids;
nothing is paired by listing order.  A manifest id without a prompt (when prompts are used) is an error too.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from utils.wording import agree, plural

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class PairingError(ValueError):
    """Generated audio, manifest and prompts do not match id for id; the message names the ids."""


@dataclass
class ReferenceUtterance:
    """One reference utterance of the manifest."""

    utt_id: str
    path: Optional[Path]
    speaker: Optional[str]
    text: Optional[str]
    prompt: Optional[Path] = None


@dataclass
class PairedPaths:
    """Files of one utterance to evaluate."""

    utt_id: str
    generated: Path
    reference: Optional[Path]
    prompt: Optional[Path]
    text: Optional[str]
    speaker: Optional[str]


def _name_ids(ids: Iterable[str], limit: int = 10) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def _resolve(raw: str, base: Path, what: str) -> Path:
    """``raw`` (relative: to ``base``, the folder of the file that names it) -> an existing file."""
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise PairingError(f"{what}: file {raw!r} not found (looked in {path.parent})")
    return path


def read_manifest(path: Path) -> Dict[str, ReferenceUtterance]:
    """Read a JSONL reference manifest into ``{id: entry}``; bad lines, missing files and duplicate ids are errors."""
    from processors.data.manifest import ManifestError, numbered_jsonl

    path = Path(path)
    if not path.is_file():
        raise PairingError(f"reference manifest not found: {path}")
    entries: Dict[str, ReferenceUtterance] = {}
    try:
        rows = numbered_jsonl(path, ("id",), ())
    except ManifestError as err:
        raise PairingError(str(err).replace("a row needs 'id'", "every manifest line needs an 'id'")) from None
    for line_no, row in rows:
        utt_id = str(row["id"])
        if not utt_id.strip():
            raise PairingError(f"{path}:{line_no}: every manifest line needs an 'id'")
        if utt_id in entries:
            raise PairingError(f"{path}:{line_no}: duplicate id {utt_id!r}")
        where = f"{path}:{line_no} ({utt_id})"
        audio = _resolve(row["path"], path.parent, where) if row.get("path") else None
        prompt = _resolve(row["prompt"], path.parent, where) if row.get("prompt") else None
        entries[utt_id] = ReferenceUtterance(utt_id, audio, row.get("speaker"), row.get("text"), prompt)
    if not entries:
        raise PairingError(f"reference manifest {path} has no entries")
    return entries


def read_prompt_mapping(path: Path) -> Dict[str, Path]:
    """Read ``{id: prompt path}`` from a JSON object or a two-column TSV/CSV file."""
    path = Path(path)
    if not path.is_file():
        raise PairingError(f"prompt mapping not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise PairingError(f"{path}: not valid JSON ({err.msg})") from err
        if not isinstance(raw, dict):
            raise PairingError(f"{path}: the prompt mapping must be a JSON object {{id: path}}")
        pairs = [(str(k), str(v)) for k, v in raw.items()]
    else:
        delimiter = "\t" if "\t" in text else ","
        pairs = []
        for line_no, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise PairingError(f"{path}:{line_no}: expected 2 columns (id, prompt path), got {len(row)}")
            pairs.append((row[0].strip(), row[1].strip()))
    mapping: Dict[str, Path] = {}
    for utt_id, raw_path in pairs:
        if utt_id in mapping:
            raise PairingError(f"{path}: duplicate id {utt_id!r} in the prompt mapping")
        mapping[utt_id] = _resolve(raw_path, path.parent, f"{path} ({utt_id})")
    return mapping


def scan_generated(directory: Path) -> Dict[str, Path]:
    """``{id: file}`` for every audio file under ``directory``; duplicate ids are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PairingError(f"generated-audio directory not found: {directory}")
    found: Dict[str, Path] = {}
    for file in sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        if file.stem in found:
            raise PairingError(f"two generated files share the id {file.stem!r}: {found[file.stem]} and {file}")
        found[file.stem] = file
    if not found:
        raise PairingError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {directory}")
    return found


def pair(
    generated: Dict[str, Path],
    manifest: Dict[str, ReferenceUtterance],
    prompts: Optional[Dict[str, Path]] = None,
    system: str = "generated",
) -> List[PairedPaths]:
    """Pair by id, in manifest order; raise :class:`PairingError` naming every missing or extra id."""
    missing = set(manifest) - set(generated)
    extra = set(generated) - set(manifest)
    problems = []
    if missing:
        have = agree(len(missing), "has", "have")
        problems.append(f"{plural(len(missing), 'manifest id')} {have} no generated audio: {_name_ids(missing)}")
    if extra:
        have = agree(len(extra), "has", "have")
        problems.append(f"{plural(len(extra), 'generated file')} {have} no manifest entry: {_name_ids(extra)}")
    if problems:
        raise PairingError(f"{system}: " + "; ".join(problems))
    if prompts is not None:
        no_prompt = [i for i in manifest if i not in prompts and manifest[i].prompt is None]
        if no_prompt:
            have = agree(len(no_prompt), "has", "have")
            raise PairingError(f"{system}: {plural(len(no_prompt), 'manifest id')} {have} no prompt: "
                               f"{_name_ids(no_prompt)}")
        unused = set(prompts) - set(manifest)
        if unused:
            logger.warning("prompt mapping has %s not in the manifest (ignored): %s", plural(len(unused), "id"),
                           _name_ids(unused))
    out = []
    for utt_id, entry in manifest.items():
        prompt = (prompts or {}).get(utt_id, entry.prompt)
        out.append(PairedPaths(utt_id, generated[utt_id], entry.path, prompt, entry.text, entry.speaker))
    return out
