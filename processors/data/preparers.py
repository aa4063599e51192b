"""Dataset preparers: corpus on disk -> ``train.jsonl``, ``valid.jsonl``, ``test.jsonl`` (+ ``rejected.tsv``).

Every preparer has the signature ``prepare(data_dir, out_dir, seed=1234, valid=0.05, test=0.05,
download=False, **options) -> {split: manifest path}`` and is registered as ``preparer`` in the registry:

* ``ljspeech`` — ``metadata.csv`` (``id|raw|normalized``) + ``wavs/``; one speaker ``LJ``; normalized text.
* ``vctk`` — VCTK 0.92 (``txt/`` + ``wav48_silence_trimmed/*_mic1.flac``, option ``mic``) or the older
  ``wav48/*.wav`` layout; speakers without transcripts (p315) get empty text.
* ``libritts`` — ``<subset>/<spk>/<chapter>/*.wav`` + ``.normalized.txt``; ``dev-*`` subsets become valid and
  ``test-*`` test when present, otherwise a seeded split.
* ``folder`` — any audio under a folder (wav/flac/ogg/mp3), transcript from a sibling ``.txt``/``.lab``, speaker =
  first sub-folder (or the folder's name for files at its top).
* ``kaldi`` — ``wav.scp`` (+ optional ``text``, ``utt2spk``); piped commands and ``segments`` are not supported.
* ``mini`` — ``egs/mini/corpus/manifest.csv`` (``path, speaker, transcript, ...``).

Corpus roots are found at ``data_dir`` or its usual sub-folder (``LJSpeech-1.1``, ``VCTK-Corpus-0.92``,
``LibriTTS``).  When missing: with ``download=True`` the public archive is fetched (see :mod:`.download`),
otherwise the error names the expected layout and the URL.  Files whose header cannot be read are left out of
the manifests and listed with the reason in ``rejected.tsv``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from processors.audio import AudioError, audio_info
from processors.data.download import CORPUS_URLS, fetch_and_extract
from processors.data.manifest import ManifestEntry, safe_id, split_entries, write_manifest
from utils.io import atomic_write_text
from utils.registry import register
from utils.wording import plural

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
Record = Tuple[str, str, str, str, Optional[str]]  # id, path, speaker, text, fixed split (or None)


class PreparerError(FileNotFoundError):
    """The corpus is not where it should be (or is malformed); the message says what was expected."""


# --------------------------------------------------------------------------- shared steps
def _find_root(data_dir: Path, subdirs: Iterable[str], is_root, name: str, layout: str, download: bool) -> Path:
    candidates = [data_dir] + [data_dir / sub for sub in subdirs]
    for candidate in candidates:
        if is_root(candidate):
            return candidate
    urls = CORPUS_URLS[name]
    if not download:
        raise PreparerError(
            f"{name} not found under {data_dir} (expected {layout}); offline, pass the local corpus path; "
            f"with internet, download {' '.join(urls)} or use download=True"
        )
    logger.info("%s not found under %s: downloading %s", name, data_dir, " ".join(urls))
    for url in urls:
        fetch_and_extract(url, data_dir)
    for candidate in candidates:
        if is_root(candidate):
            return candidate
    raise PreparerError(f"downloaded {name} into {data_dir} but found no {layout}")


def _finish(
    records: List[Record], out_dir: Path, seed: int, valid: float, test: float, source: str
) -> Dict[str, Path]:
    """Read headers, reject unreadable files, split, write manifests; returns ``{split: path}``."""
    if not records:
        raise PreparerError(f"no audio items found in {source}")
    entries: List[ManifestEntry] = []
    fixed: Dict[str, str] = {}
    rejected: List[Tuple[str, str, str]] = []
    seen: Dict[str, str] = {}
    for item_id, path, speaker, text, split in records:
        if item_id in seen:
            raise PreparerError(f"{source}: id {item_id!r} used by both {seen[item_id]} and {path}")
        seen[item_id] = path
        try:
            info = audio_info(path)
            if info.frames == 0:
                raise AudioError(f"{path}: audio file holds no samples")
        except AudioError as err:
            rejected.append((item_id, path, str(err)))
            continue
        entries.append(ManifestEntry(item_id, path, speaker, text, round(info.frames / info.samplerate, 4), info.samplerate))
        if split is not None:
            fixed[item_id] = split
    if fixed and {"valid", "test"} <= set(fixed.values()):
        splits = {name: [e for e in entries if fixed.get(e.id, "train") == name] for name in ("train", "valid", "test")}
    else:
        splits = split_entries(entries, valid, test, seed)
    paths = write_splits(splits, rejected, out_dir)
    counts = ", ".join(f"{name} {len(items)}" for name, items in splits.items())
    logger.info("%s: %s items (%s) -> %s", source, len(entries), counts, out_dir)
    return paths


def write_splits(splits: Dict[str, List[ManifestEntry]], rejected: List[Tuple[str, str, str]], out_dir: Path) -> Dict[str, Path]:
    """``<split>.jsonl`` per split and ``rejected.tsv`` (id, path, reason; removed when nothing was rejected)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: write_manifest(items, out_dir / f"{name}.jsonl") for name, items in splits.items()}
    rejected_path = out_dir / "rejected.tsv"
    if rejected:
        atomic_write_text(rejected_path, "".join(f"{i}\t{p}\t{r}\n" for i, p, r in rejected))
        logger.warning("%s left out; see %s", plural(len(rejected), "item"), rejected_path)
    elif rejected_path.exists():
        rejected_path.unlink()
    return paths


def _read_text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8", errors="replace").split()) if path.is_file() else ""


# --------------------------------------------------------------------------- corpora
@register("preparer", "ljspeech")
def prepare_ljspeech(data_dir, out_dir, seed: int = 1234, valid: float = 0.05, test: float = 0.05, download: bool = False):
    """LJSpeech 1.1: ``metadata.csv`` + ``wavs/``; text = the normalized column (raw when it is empty)."""
    root = _find_root(
        Path(data_dir), ["LJSpeech-1.1"], lambda p: (p / "metadata.csv").is_file(), "ljspeech", "metadata.csv + wavs/", download
    )
    records: List[Record] = []
    with open(root / "metadata.csv", encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="|", quoting=csv.QUOTE_NONE), start=1):
            if not row:
                continue
            if len(row) < 2:
                raise PreparerError(f"{root / 'metadata.csv'}:{number}: expected 'id|raw|normalized'")
            text = row[2] if len(row) > 2 and row[2].strip() else row[1]
            records.append((safe_id(row[0]), str(root / "wavs" / f"{row[0]}.wav"), "LJ", text.strip(), None))
    return _finish(records, Path(out_dir), seed, valid, test, str(root))


def _vctk_root(path: Path) -> bool:
    return (path / "txt").is_dir() and ((path / "wav48_silence_trimmed").is_dir() or (path / "wav48").is_dir())


@register("preparer", "vctk")
def prepare_vctk(
    data_dir, out_dir, seed: int = 1234, valid: float = 0.05, test: float = 0.05, download: bool = False, mic: str = "mic1"
):
    """VCTK 0.92 (flac, ``mic1``/``mic2``) or the older wav48 release."""
    root = _find_root(
        Path(data_dir), ["VCTK-Corpus-0.92", "VCTK-Corpus"], _vctk_root, "vctk", "txt/ + wav48_silence_trimmed/", download
    )
    records: List[Record] = []
    new_layout = (root / "wav48_silence_trimmed").is_dir()
    audio_root = root / ("wav48_silence_trimmed" if new_layout else "wav48")
    pattern = f"*_{mic}.flac" if new_layout else "*.wav"
    for path in sorted(audio_root.glob(f"*/{pattern}")):
        speaker = path.parent.name
        utt = path.stem[: -len(mic) - 1] if new_layout else path.stem
        records.append((safe_id(utt), str(path), speaker, _read_text(root / "txt" / speaker / f"{utt}.txt"), None))
    return _finish(records, Path(out_dir), seed, valid, test, str(root))


@register("preparer", "libritts")
def prepare_libritts(
    data_dir, out_dir, seed: int = 1234, valid: float = 0.05, test: float = 0.05, download: bool = False, subsets=None
):
    """LibriTTS subsets under one root; ``subsets`` (list) restricts which ones are read."""
    root = _find_root(
        Path(data_dir),
        ["LibriTTS"],
        lambda p: any(p.glob("train-*")) or any(p.glob("dev-*")) or any(p.glob("test-*")),
        "libritts",
        "train-clean-100/ (and dev-clean/, test-clean/)",
        download,
    )
    chosen = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(("train-", "dev-", "test-")))
    if subsets:
        chosen = [p for p in chosen if p.name in set(subsets)]
        if not chosen:
            raise PreparerError(f"none of the subsets {list(subsets)} exists under {root}")
    records: List[Record] = []
    for subset in chosen:
        split = {"train": "train", "dev": "valid", "test": "test"}[subset.name.split("-")[0]]
        for path in sorted(subset.glob("*/*/*.wav")):
            text = _read_text(path.with_suffix(".normalized.txt")) or _read_text(path.with_suffix(".original.txt"))
            records.append((safe_id(path.stem), str(path), path.parent.parent.name, text, split))
    return _finish(records, Path(out_dir), seed, valid, test, str(root))


def scan_folder(root: Path) -> List[Record]:
    """Records for every audio file under ``root`` (no audio is read); see :func:`prepare_folder`."""
    if not root.is_dir():
        raise PreparerError(f"audio folder not found: {root}")
    records: List[Record] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        rel = path.relative_to(root)
        speaker = rel.parts[0] if len(rel.parts) > 1 else root.name
        text = _read_text(path.with_suffix(".txt")) or _read_text(path.with_suffix(".lab"))
        records.append((safe_id(*rel.with_suffix("").parts), str(path), speaker, text, None))
    return records


@register("preparer", "folder")
def prepare_folder(data_dir, out_dir, seed: int = 1234, valid: float = 0.05, test: float = 0.05, download: bool = False):
    """Any audio files under ``data_dir``; sibling ``.txt``/``.lab`` transcripts; speaker = first sub-folder."""
    root = Path(data_dir)
    return _finish(scan_folder(root), Path(out_dir), seed, valid, test, str(root))


def _kaldi_table(path: Path, required: bool) -> Dict[str, str]:
    if not path.is_file():
        if required:
            raise PreparerError(f"Kaldi data dir is missing {path}")
        return {}
    table = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        if not value.strip():
            raise PreparerError(f"{path}:{number}: expected '<utt-id> <value>'")
        table[key] = value.strip()
    return table


@register("preparer", "kaldi")
def prepare_kaldi(data_dir, out_dir, seed: int = 1234, valid: float = 0.05, test: float = 0.05, download: bool = False):
    """Kaldi/ESPnet data dir: ``wav.scp`` (paths only), optional ``text`` and ``utt2spk``."""
    root = Path(data_dir)
    if (root / "segments").is_file():
        raise PreparerError(f"{root / 'segments'}: segmented recordings are not supported; cut the audio first")
    wavs = _kaldi_table(root / "wav.scp", required=True)
    texts = _kaldi_table(root / "text", required=False)
    speakers = _kaldi_table(root / "utt2spk", required=False)
    records: List[Record] = []
    for utt, location in sorted(wavs.items()):
        if location.endswith("|"):
            raise PreparerError(f"{root / 'wav.scp'}: {utt} is a piped command; only file paths are supported")
        path = Path(location)
        path = path if path.is_absolute() else root / path
        records.append((safe_id(utt), str(path), speakers.get(utt, utt.split("_")[0]), texts.get(utt, ""), None))
    return _finish(records, Path(out_dir), seed, valid, test, str(root))


@register("preparer", "mini")
def prepare_mini(data_dir, out_dir, seed: int = 1234, valid: float = 0.1, test: float = 0.1, download: bool = False):
    """The bundled mini corpus (``manifest.csv`` with ``path, speaker, transcript``); ids from the paths."""
    root = Path(data_dir)
    table = root / "manifest.csv"
    if not table.is_file():
        raise PreparerError(f"mini corpus manifest not found: {table} (the bundled copy is egs/mini/corpus)")
    records: List[Record] = []
    with open(table, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row.get("path"):
                continue
            rel = Path(row["path"])
            records.append((safe_id(*rel.with_suffix("").parts), str(root / rel), row.get("speaker") or "unknown",
                            (row.get("transcript") or "").strip(), None))
    return _finish(records, Path(out_dir), seed, valid, test, str(root))
