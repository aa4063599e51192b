"""Lhotse interop: run any Lhotse corpus recipe on a local copy, and convert CutSets to and from manifests.

* ``echelon-preprocess --dataset lhotse:<recipe> --data_dir DIR`` calls ``lhotse.recipes.prepare_<recipe>``
  (no download: the corpus must be on disk) and writes Echelon's ``train/valid/test.jsonl``: recipe parts named
  ``dev*``/``valid*`` become valid, ``test*`` test, the rest train; without such parts a seeded split is made.
* ``--from_lhotse cuts.jsonl.gz`` does the same from an existing CutSet; ``--to_lhotse`` writes each split's
  manifest as a CutSet (``<split>_cuts.jsonl.gz``) as well.

An Echelon manifest row is a whole audio file (its id: the recording's); a cut that is a segment of a longer recording, or that has no
single file behind it, is left out and listed in ``rejected.tsv`` with the reason.  The text is
:func:`supervision_text` (``custom.normalized_text`` when the recipe gives one, e.g. LJSpeech; whitespace
collapsed), the text every route trains on: manifests made here, and cuts streamed from Shar shards
(:mod:`processors.data.shar`); speaker, duration and rate come from the supervision and the recording; any other
supervision ``custom`` fields go to ``extra``.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from processors.data.manifest import ManifestEntry, read_manifest, safe_id, split_entries
from processors.data.preparers import write_splits
from utils.io import atomic_path
from utils.wording import agree, plural

log = logging.getLogger(__name__)

__all__ = ["LhotseError", "supervision_text", "prepare_with_lhotse", "prepare_from_cuts", "write_cuts",
           "entries_from_cuts"]


class LhotseError(ValueError):
    """A recipe that does not exist or failed, or a CutSet that cannot be read; the message says which."""


def supervision_text(text: Optional[str], custom: Optional[Mapping[str, Any]]) -> str:
    """The text a model trains on for a supervision with ``text`` and ``custom``: the recipe's normalised text
    (``custom["normalized_text"]``, e.g. LJSpeech's "Doctor Smith paid five dollars") when there is one, else
    ``text``; whitespace runs collapsed.  One rule for ``--from_lhotse``, ``lhotse:<recipe>`` and Shar shards."""
    normalised = (custom or {}).get("normalized_text")
    return " ".join(str(normalised or text or "").split())


def _split_of(part: str) -> str:
    name = part.lower()
    return "valid" if name.startswith(("dev", "valid")) else "test" if name.startswith("test") else "train"


def entries_from_cuts(cuts: Iterable[Any]) -> Tuple[List[ManifestEntry], List[Tuple[str, str, str]]]:
    """Manifest entries of whole-file cuts, and (id, path, reason) of the cuts left out."""
    entries, rejected = [], []
    for cut in cuts:
        rec = cut.recording if cut.has_recording else None
        path = rec.sources[0].source if rec is not None and len(rec.sources) == 1 else ""
        if rec is None or rec.sources[0].type != "file":
            rejected.append((cut.id, str(path), "no single audio file behind this cut"))
            continue
        if cut.start > 1e-3 or abs(cut.duration - rec.duration) > 1e-2:
            rejected.append((cut.id, path, f"segment {cut.start:.2f}+{cut.duration:.2f} s of a "
                                           f"{rec.duration:.2f} s recording (manifests hold whole files)"))
            continue
        sup = cut.supervisions[0] if cut.supervisions else None
        custom = dict(sup.custom or {}) if sup is not None else {}
        text = supervision_text(sup.text if sup is not None else "", custom)
        custom.pop("normalized_text", None)
        extra = custom.pop("extra", None) or custom
        entries.append(ManifestEntry(safe_id(rec.id), str(path), str(sup.speaker or "") if sup is not None else "",
                                     text, round(float(cut.duration), 4),
                                     int(rec.sampling_rate), dict(extra)))
    return entries, rejected


def _write_splits(parts: Mapping[str, List[ManifestEntry]], rejected: List[Tuple[str, str, str]], out_dir: Path,
                  seed: int, valid: float, test: float) -> Dict[str, Path]:
    everything = [e for part in parts.values() for e in part]
    if not everything:
        raise LhotseError(f"no usable item ({len(rejected)} left out; see {out_dir / 'rejected.tsv'})")
    fixed = {_split_of(name) for name in parts}
    if {"valid", "test"} <= fixed:
        splits = {s: [e for n, p in parts.items() if _split_of(n) == s for e in p] for s in ("train", "valid", "test")}
    else:
        splits = split_entries(everything, valid, test, seed)
    return write_splits(splits, rejected, out_dir)


def _cut_parts(manifests: Mapping[str, Any]) -> Dict[str, Any]:
    """A recipe's result ({recordings, supervisions} or {part: {...}}) as {part: CutSet}."""
    from lhotse import CutSet

    if "recordings" in manifests:
        manifests = {"all": manifests}
    parts = {}
    for name, pair in manifests.items():
        if not isinstance(pair, Mapping) or "recordings" not in pair:
            continue
        parts[name] = CutSet.from_manifests(recordings=pair["recordings"], supervisions=pair.get("supervisions"))
    return parts


def prepare_with_lhotse(recipe: str, data_dir: str | Path, out_dir: str | Path, seed: int = 1234,
                        valid: float = 0.05, test: float = 0.05, **options: Any) -> Dict[str, Path]:
    """Run ``lhotse.recipes.prepare_<recipe>(data_dir, **options)`` and write Echelon manifests."""
    from lhotse import recipes

    prepare = getattr(recipes, f"prepare_{recipe}", None)
    if prepare is None:
        known = sorted(n[len("prepare_"):] for n in dir(recipes) if n.startswith("prepare_"))
        raise LhotseError(f"lhotse has no recipe {recipe!r} ({len(known)} known, e.g. {', '.join(known[:8])}, ...)")
    accepted = inspect.signature(prepare).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise LhotseError(f"lhotse recipe {recipe!r} takes no {agree(len(unknown), 'option', 'options')} {unknown}; it "
                          f"takes {sorted(accepted)}")
    if not Path(data_dir).is_dir():
        raise LhotseError(f"--data_dir {data_dir}: not a folder (lhotse recipes run on a local copy of the corpus)")
    try:
        manifests = prepare(Path(data_dir), **options)
    except (AssertionError, OSError, ValueError, KeyError, IndexError) as err:
        raise LhotseError(f"lhotse recipe {recipe!r} failed on {data_dir}: {type(err).__name__}: {err}") from None
    parts, rejected = {}, []
    for name, cuts in _cut_parts(manifests or {}).items():
        parts[name], left_out = entries_from_cuts(cuts)
        rejected += left_out
    log.info("lhotse:%s: %s in %s", recipe, plural(sum(map(len, parts.values())), "usable item"),
             plural(len(parts), "part"))
    return _write_splits(parts, rejected, Path(out_dir), seed, valid, test)


def prepare_from_cuts(cuts_path: str | Path, out_dir: str | Path, seed: int = 1234, valid: float = 0.05,
                      test: float = 0.05) -> Dict[str, Path]:
    """Echelon manifests from a Lhotse CutSet file (``cuts.jsonl.gz``)."""
    from lhotse import CutSet

    try:
        cuts = CutSet.from_file(cuts_path)
    except (OSError, ValueError, KeyError) as err:
        raise LhotseError(f"--from_lhotse {cuts_path}: not a readable Lhotse CutSet ({err})") from None
    entries, rejected = entries_from_cuts(cuts)
    return _write_splits({Path(cuts_path).name: entries}, rejected, Path(out_dir), seed, valid, test)


def write_cuts(manifest: str | Path, out_path: str | Path) -> Path:
    """A manifest as a Lhotse CutSet: one cut per file, one supervision (text, speaker, ``custom.extra``)."""
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    cuts = []
    for e in read_manifest(manifest):
        rec = Recording.from_file(e.path, recording_id=e.id)
        sup = SupervisionSegment(id=e.id, recording_id=e.id, start=0.0, duration=rec.duration, text=e.text,
                                 speaker=e.speaker, custom={"extra": e.extra} if e.extra else None)
        cuts.append(MonoCut(id=e.id, start=0.0, duration=rec.duration, channel=0, recording=rec, supervisions=[sup]))
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".jsonl.gz") as tmp:  # the suffix tells Lhotse to gzip
        CutSet.from_cuts(cuts).to_file(tmp)
    return out_path
