"""Feature extraction over a manifest: parallel, resumable, atomic, and tolerant of bad items.

Layout (read by the training datasets): ``<out_dir>/<kind>/<id>.pt``, one float tensor per file
(``torch.save``; load with ``weights_only=True``).  For an utterance of N samples at 16 kHz, T = N // 320:

* ``mel``    ``(80, T)``  HierSpeech++ log-mel (:class:`processors.spectrogram.HierSpeechLogMel`)
* ``linear`` ``(641, T)`` HierSpeech++ linear magnitude spectrogram
* ``f0``     ``(4T,)``    ln(F0 + 1) at 200 Hz, unvoiced 0 (YAAPT official settings, or pyworld dio/harvest)
* ``ssl``    ``(C, T)``   SSL layer features with the official padding (:func:`processors.ssl.official_ssl_input`)

Behaviour:

* resumable — an item whose requested feature files all exist is skipped; a partly done item computes only the
  missing kinds (``overwrite=True`` recomputes);
* atomic — each file is written to a temporary name in the same folder and renamed, so an interrupted run never
  leaves a truncated ``.pt``; nothing already written is removed;
* parallel — audio features run in ``num_workers`` processes; SSL runs in the calling process (one model in
  memory, on ``device``), batched with padding masks;
* bad items (missing/empty/corrupt/too-short audio, F0 or SSL failures) are skipped and listed with their reason
  in ``<out_dir>/bad_items.tsv`` (``id<TAB>path<TAB>reason``); rows of items from other manifests are kept.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from processors.audio import AudioError, load_audio
from processors.data.manifest import ManifestEntry, atomic_write_text
from processors.f0 import F0_MAX_VC, align_f0_length, extract_f0, to_log_f0

logger = logging.getLogger(__name__)

AUDIO_KINDS = ("mel", "linear", "f0")
ALL_KINDS = AUDIO_KINDS + ("ssl",)
BAD_ITEMS = "bad_items.tsv"


@dataclass(frozen=True)
class AudioFeatureSettings:
    """Settings of the audio-level features (HierSpeech++ defaults: 16 kHz, hop 320, YAAPT f0_max 1100)."""

    sample_rate: int = 16000
    hop_length: int = 320
    f0_method: str = "yaapt"
    f0_max: float = F0_MAX_VC
    min_duration: float = 0.1


@dataclass
class ExtractionReport:
    done: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    bad: Dict[str, str] = field(default_factory=dict)  # id -> reason
    bad_items_path: Optional[Path] = None


def save_tensor(tensor: torch.Tensor, path: Path) -> None:
    """``torch.save`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(tensor.detach().cpu().contiguous(), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def feature_path(out_dir: Path, kind: str, item_id: str) -> Path:
    return out_dir / kind / f"{item_id}.pt"


# --------------------------------------------------------------------------- audio features (worker side)
_MODULES: Dict[Tuple[str, int, int], torch.nn.Module] = {}


def _module(kind: str, settings: AudioFeatureSettings) -> torch.nn.Module:
    from processors.spectrogram import HierSpeechLinearSpectrogram, HierSpeechLogMel

    key = (kind, settings.sample_rate, settings.hop_length)  # the mel filterbank depends on the rate
    if key not in _MODULES:
        if kind == "mel":
            _MODULES[key] = HierSpeechLogMel(sample_rate=settings.sample_rate, hop_length=settings.hop_length)
        else:
            _MODULES[key] = HierSpeechLinearSpectrogram(hop_length=settings.hop_length)
    return _MODULES[key]


def compute_audio_features(wav: np.ndarray, kinds: Sequence[str], settings: AudioFeatureSettings) -> Dict[str, torch.Tensor]:
    """``(N,)`` float32 audio at ``settings.sample_rate`` -> {kind: tensor} for ``mel``, ``linear``, ``f0``."""
    frames = wav.shape[0] // settings.hop_length
    out: Dict[str, torch.Tensor] = {}
    x = torch.from_numpy(wav).unsqueeze(0)
    with torch.no_grad():
        for kind in kinds:
            if kind in ("mel", "linear"):
                out[kind] = _module(kind, settings)(x)[0]
            elif kind == "f0":
                f0_hz = extract_f0(wav, settings.sample_rate, settings.f0_method, settings.f0_max)
                if not np.any(f0_hz > 0):  # training drops all-unvoiced files (official prepare_filelist)
                    raise ValueError(f"{settings.f0_method} found no voiced frame")
                out[kind] = align_f0_length(to_log_f0(f0_hz), 4 * frames)
            else:
                raise ValueError(f"unknown audio feature {kind!r}; expected one of {AUDIO_KINDS}")
    return out


def _audio_item(
    entry: ManifestEntry, kinds: Tuple[str, ...], out_dir: Path, settings: AudioFeatureSettings
) -> Tuple[str, Optional[str]]:
    """Compute and save the missing audio features of one item; returns (id, error or None)."""
    try:
        wav = load_audio(entry.path, settings.sample_rate, min_duration=settings.min_duration)
        for kind, value in compute_audio_features(wav, kinds, settings).items():
            save_tensor(value, feature_path(out_dir, kind, entry.id))
        return entry.id, None
    except (AudioError, ValueError, RuntimeError, OSError) as err:
        return entry.id, f"{type(err).__name__}: {err}".replace("\t", " ").replace("\n", " ")


def _init_worker() -> None:
    torch.set_num_threads(1)  # workers are the parallelism; avoid oversubscription


# --------------------------------------------------------------------------- SSL (main process)
def _ssl_batch(extractor, entries: List[ManifestEntry], settings: AudioFeatureSettings, device: str) -> Dict[str, torch.Tensor]:
    from processors.ssl import official_ssl_input

    wavs = [load_audio(e.path, settings.sample_rate, min_duration=settings.min_duration) for e in entries]
    inputs = [official_ssl_input(torch.from_numpy(w).unsqueeze(0))[0] for w in wavs]
    lengths = torch.tensor([x.numel() for x in inputs])
    batch = torch.zeros(len(inputs), int(lengths.max()))
    for b, x in enumerate(inputs):
        batch[b, : x.numel()] = x
    feats, _ = extractor(batch.to(device), lengths.to(device))
    return {e.id: feats[b, :, : w.shape[0] // settings.hop_length].float().cpu() for b, (e, w) in enumerate(zip(entries, wavs))}


def _run_ssl(extractor, entries, out_dir, settings, device, batch_size, bad) -> None:
    from tqdm import tqdm

    extractor = extractor.to(device)
    ordered = sorted(entries, key=lambda e: e.duration)  # similar lengths per batch, less padding
    chunks = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    for chunk in tqdm(chunks, desc="ssl", unit="batch", disable=None):
        try:
            results = _ssl_batch(extractor, chunk, settings, device)
        except (AudioError, ValueError, RuntimeError, OSError):
            results = {}
            for entry in chunk:  # isolate the culprit(s)
                try:
                    results.update(_ssl_batch(extractor, [entry], settings, device))
                except (AudioError, ValueError, RuntimeError, OSError) as err:
                    bad[entry.id] = f"ssl: {type(err).__name__}: {err}".replace("\t", " ").replace("\n", " ")
        for item_id, value in results.items():
            save_tensor(value, feature_path(out_dir, "ssl", item_id))


# --------------------------------------------------------------------------- driver
def _update_bad_items(out_dir: Path, entries: Sequence[ManifestEntry], bad: Dict[str, str]) -> Path:
    """Rewrite bad_items.tsv: rows of this manifest's items replaced by this run's, others kept."""
    path = out_dir / BAD_ITEMS
    ours = {e.id for e in entries}
    kept = []
    if path.is_file():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and line.split("\t", 1)[0] not in ours]
    paths = {e.id: e.path for e in entries}
    rows = kept + [f"{item_id}\t{paths[item_id]}\t{reason}" for item_id, reason in sorted(bad.items())]
    atomic_write_text(path, "".join(row + "\n" for row in rows))
    return path


def extract_features(
    entries: Sequence[ManifestEntry],
    out_dir: str | os.PathLike,
    kinds: Sequence[str] = ALL_KINDS,
    settings: AudioFeatureSettings = AudioFeatureSettings(),
    ssl_extractor=None,
    ssl_model: Optional[str] = None,
    ssl_layer: int = 7,
    num_workers: int = 1,
    device: str = "cpu",
    ssl_batch_size: int = 4,
    overwrite: bool = False,
) -> ExtractionReport:
    """Extract ``kinds`` for every entry into ``out_dir``; see the module docstring for the guarantees.

    SSL needs ``ssl_extractor`` (an :class:`processors.ssl.SSLFeatureExtractor`) or ``ssl_model`` (hub id or
    local directory, loaded before any work so a missing model fails fast).
    """
    out_dir = Path(out_dir)
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown:
        raise ValueError(f"unknown feature kind(s) {unknown}; expected some of {list(ALL_KINDS)}")
    if "ssl" in kinds and ssl_extractor is None:
        if not ssl_model:
            raise ValueError("the 'ssl' feature needs ssl_model (hub id or local directory) or ssl_extractor")
        from processors.ssl import SSLFeatureExtractor

        ssl_extractor = SSLFeatureExtractor.from_pretrained(ssl_model, layer=ssl_layer)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExtractionReport()
    todo: Dict[str, Tuple[str, ...]] = {}
    for entry in entries:
        missing = tuple(k for k in kinds if overwrite or not feature_path(out_dir, k, entry.id).is_file())
        if missing:
            todo[entry.id] = missing
        else:
            report.skipped.append(entry.id)
    by_id = {e.id: e for e in entries}
    logger.info("features %s: %d items to do, %d already done -> %s", ",".join(kinds), len(todo), len(report.skipped), out_dir)

    audio_jobs = [(by_id[i], tuple(k for k in m if k in AUDIO_KINDS)) for i, m in todo.items()]
    audio_jobs = [(e, k) for e, k in audio_jobs if k]
    bad: Dict[str, str] = {}
    _run_audio_jobs(audio_jobs, out_dir, settings, num_workers, bad)
    ssl_todo = [by_id[i] for i, m in todo.items() if "ssl" in m and i not in bad]
    if ssl_todo:
        _run_ssl(ssl_extractor, ssl_todo, out_dir, settings, device, max(1, ssl_batch_size), bad)
    report.bad = bad
    report.done = [i for i in todo if i not in bad]
    report.bad_items_path = _update_bad_items(out_dir, entries, bad)
    if bad:
        logger.warning("%d bad item(s) skipped; reasons in %s", len(bad), report.bad_items_path)
    logger.info("features done: %d computed, %d skipped (already done), %d bad", len(report.done), len(report.skipped), len(bad))
    return report


def _run_audio_jobs(jobs, out_dir: Path, settings: AudioFeatureSettings, num_workers: int, bad: Dict[str, str]) -> None:
    from tqdm import tqdm

    if not jobs:
        return
    if num_workers <= 1:
        for entry, kinds in tqdm(jobs, desc="audio features", unit="utt", disable=None):
            item_id, error = _audio_item(entry, kinds, out_dir, settings)
            if error:
                bad[item_id] = error
        return
    with ProcessPoolExecutor(max_workers=num_workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futures = {pool.submit(_audio_item, entry, kinds, out_dir, settings): entry.id for entry, kinds in jobs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="audio features", unit="utt", disable=None):
            try:
                item_id, error = future.result()
            except BrokenProcessPool as err:  # a worker died (e.g. killed for memory): the item is reported
                item_id, error = futures[future], f"worker crashed: {err}"
            if error:
                bad[item_id] = error
