"""Training-data loading: Lhotse Shar shards vs one file per item and feature (not a timed test).

A generated corpus of ``--items`` short clips (0.5-1.5 s noise at 16 kHz, 16-bit wav) with an 80-bin mel
(hop 320, float32) and F0 (float32) per clip is stored as:

* **files** — Echelon's per-item layout: ``wavs/<id>.wav``, ``features/mel/<id>.pt``, ``features/f0/<id>.pt``
  (3 files per item), read as the trainers read it (soundfile, ``load_feature``) by a map-style dataset
  through a shuffled DataLoader;
* **shar** — the same items converted to shards by ``processors.data.shar.write_shar(features_dir=...)``
  (``--shard_size`` items per shard; audio as 16-bit wav like the files; 4 files per shard), read by the
  trainer's :class:`models.base.shar_stream.ShardStream` (disjoint shards per worker, Lhotse dynamic
  bucketing) and decoded as the trainers decode (``cut_audio``, ``cut_array``);
* **shar-flac** (``--readers ... shar-flac``) — the same shards with flac audio (the extractor's default).

Before measuring, every file of every layout measured is read once, so all start from the page cache (the
per-item files' best case; ``--cold`` skips this). Each reader then runs one full epoch in its own process with
0 and 2 dataloader workers (readers interleaved, ``--repeat`` times), batches of 16 items (padded audio, mel,
F0), and reports items/s, time to the first batch, the number of files, and RSS (process + workers, psutil:
at 25/50/75/100 % of the epoch — flat means equal — and the peak, sampled every 0.5 s). The machine may be
loaded: wall times are printed with the CPU time (user+sys, main process + workers) next to them, and the
summary gives both ratios (medians over the repeats).

    nice python benchmarks/data_loading.py --items 2000 --work DIR      # quick
    nice python benchmarks/data_loading.py --items 20000 --work DIR --repeat 3 --readers files shar shar-flac
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE, HOP, MELS, BATCH = 16000, 320, 80, 16
SHARDS = {"shar": ("shards", "wav"), "shar-flac": ("shards_flac", "flac")}  # reader: (folder, stored audio)


# --------------------------------------------------------------------------- corpus
def generate(work: Path, items: int, shard_size: int, readers=("shar",)) -> None:
    """Write the per-item corpus, then convert it to the shards the readers read (each skipped when there)."""
    import soundfile as sf

    from processors.data.manifest import ManifestEntry, write_manifest
    from processors.data.shar import SharOptions, write_shar
    from processors.features import build_extractor
    from processors.features.store import FEATURE_INFO, save_feature

    done = work / "files.done"
    if not done.is_file():
        rng = np.random.default_rng(0)
        (work / "wavs").mkdir(parents=True, exist_ok=True)
        entries = []
        for i in range(items):
            n = int(rng.uniform(0.5, 1.5) * RATE)
            wav = (rng.standard_normal(n) * 0.1).astype(np.float32)
            path = work / "wavs" / f"u{i:06d}.wav"
            sf.write(path, wav, RATE, subtype="PCM_16")
            frames = n // HOP + 1
            save_feature(work / "features", "mel", path.stem, torch.from_numpy(rng.standard_normal((MELS, frames)).astype(np.float32)))
            save_feature(work / "features", "f0", path.stem, torch.from_numpy(rng.uniform(80, 300, frames).astype(np.float32)))
            entries.append(ManifestEntry(path.stem, str(path), f"s{i % 50}", f"utterance {i}", n / RATE, RATE))
        write_manifest(entries, work / "items.jsonl")
        for name in ("mel", "f0"):
            info = build_extractor(name).describe()
            (work / "features" / name / FEATURE_INFO).write_text(json.dumps(info))
        done.write_text("ok\n")
    for folder, audio in (SHARDS[r] for r in readers if r in SHARDS):
        marker = work / f"{folder}.done"  # holds the shard size they were written with: another size rewrites them
        if marker.is_file() and marker.read_text().strip() == str(shard_size):
            continue
        from processors.data.manifest import read_manifest

        from processors.data.shar import stored_features

        extractors = stored_features(work / "features", ["mel", "f0"])
        write_shar(read_manifest(work / "items.jsonl"), work / folder, extractors,
                   SharOptions(shard_size=shard_size, audio_format=audio, audio_rate=RATE), features_dir=work / "features",
                   overwrite=(work / folder).exists())
        marker.write_text(f"{shard_size}\n")


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def read_all(folder: Path) -> int:
    """Read every file under ``folder`` once (bytes): both layouts then start from the page cache, the per-item
    files' best case (a cold cache favours the shards' sequential reads; not measured by default)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                while chunk := handle.read(1 << 20):
                    total += len(chunk)
    return total


# --------------------------------------------------------------------------- readers
def collate(items):
    """Pad audio (B, T), mel (B, 80, F) and F0 (B, F) to the longest item."""
    wavs, mels, f0s = zip(*items)
    wav = torch.zeros(len(items), max(len(w) for w in wavs))
    mel = torch.zeros(len(items), MELS, max(m.shape[1] for m in mels))
    f0 = torch.zeros(len(items), max(len(f) for f in f0s))
    for i, (w, m, f) in enumerate(items):
        wav[i, : len(w)], mel[i, :, : m.shape[1]], f0[i, : len(f)] = w, m, f
    return wav, mel, f0


class PerItemFiles(torch.utils.data.Dataset):
    def __init__(self, work: Path):
        from processors.data.manifest import read_manifest

        self.entries = read_manifest(work / "items.jsonl")
        self.features = work / "features"

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        import soundfile as sf

        from processors.features.store import load_feature

        entry = self.entries[index]
        wav, _ = sf.read(entry.path, dtype="float32")
        return (torch.from_numpy(wav), load_feature(self.features, "mel", entry.id),
                load_feature(self.features, "f0", entry.id))


def from_cut(cut):
    from processors.data.shar_reader import cut_array, cut_audio

    return (torch.from_numpy(cut_audio(cut)), torch.from_numpy(cut_array(cut, "mel")),
            torch.from_numpy(cut_array(cut, "f0")))


def loader(kind: str, work: Path, workers: int):
    if kind == "files":
        dataset = PerItemFiles(work)
        return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                           collate_fn=collate, generator=torch.Generator().manual_seed(0))
    from models.base.sampler import BatchingConfig
    from models.base.shar_stream import ShardStream

    stream = ShardStream(work / SHARDS[kind][0], ["recording", "mel", "f0"], from_cut, collate, BatchingConfig(), BATCH,
                         seed=0, num_workers=workers, buffer=256)  # fmt: skip
    stream.set_epoch(0)
    return stream.loader()


def expected_items(work: Path) -> int:
    with open(work / "items.jsonl", encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def rss_mb() -> float:
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_one(kind: str, work: Path, workers: int) -> dict:
    """One epoch; RSS sampled every 0.5 s in a thread."""
    torch.set_num_threads(1)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            stop.wait(0.5)

    start = time.perf_counter()
    cpu0 = time.process_time()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    first, items, total = None, 0, None
    at_quarters = []
    for wav, _, _ in loader(kind, work, workers):
        items += wav.shape[0]
        if first is None:
            first, first_items = time.perf_counter() - start, items
        total = total or expected_items(work)
        if items >= total * (len(at_quarters) + 1) / 4:
            at_quarters.append(round(rss_mb(), 1))
    wall = time.perf_counter() - start
    stop.set()
    thread.join()
    children = os.times()
    return {"reader": kind, "workers": workers, "items": items, "wall_s": round(wall, 2),
            "items_per_s": round(items / wall, 1), "first_batch_s": round(first, 3),
            "items_per_s_after_first": round((items - first_items) / (wall - first), 1),
            "cpu_s_main": round(time.process_time() - cpu0, 2),
            "cpu_s_workers": round(children.children_user + children.children_system, 2),
            "rss_peak_mb": round(max(r for _, r in samples), 1), "rss_at_quarters_mb": at_quarters}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=20000)
    p.add_argument("--shard_size", type=int, default=1000)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "echelon_data_loading")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--readers", nargs="+", default=["files", "shar"], choices=["files", *SHARDS],
                   help="shar: shards with 16-bit wav audio (as the per-item files); shar-flac: flac audio")
    p.add_argument("--repeat", type=int, default=1, help="measure each (reader, workers) this many times, interleaved")
    p.add_argument("--cold", action="store_true", help="skip reading every file once before measuring")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--run", nargs=2, metavar=("READER", "WORKERS"), help=argparse.SUPPRESS)  # one measurement
    args = p.parse_args()
    work = args.work / f"n{args.items}"
    if args.run:
        print(json.dumps(run_one(args.run[0], work, int(args.run[1]))))
        return 0
    t0, c0 = time.perf_counter(), time.process_time()
    generate(work, args.items, args.shard_size, args.readers)
    print(f"corpus: {args.items} items in {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")
    folders = {"files": ["wavs", "features"], **{r: [f"{SHARDS[r][0]}/shar"] for r in SHARDS}}
    files = {r: sum(count_files(work / d) for d in folders[r]) for r in args.readers}
    if not args.cold:
        t0 = time.perf_counter()
        size = sum(read_all(work / d) for r in args.readers for d in folders[r])
        print(f"page cache: read {size / 2**30:.2f} GB (every layout measured) in {time.perf_counter() - t0:.0f} s")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = []
    for workers, _ in ((w, r) for r in range(args.repeat) for w in args.workers):
        for kind in args.readers:  # interleaved, so load changes hit all
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
            done = subprocess.run([sys.executable, __file__, "--items", str(args.items), "--work", str(args.work),
                                   "--run", kind, str(workers)], env=env, capture_output=True, text=True)
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["files"] = files[kind]
            results.append(row)
            print(json.dumps(row))
    print("\n| reader | workers | files | items/s (after 1st batch) | first batch (s) | wall (s) | CPU main+workers (s) "
          "| RSS at 25/50/75/100 % of the epoch (MB) | RSS peak (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['reader']} | {r['workers']} | {r['files']} | {r['items_per_s']} ({r['items_per_s_after_first']}) | "
              f"{r['first_batch_s']} | {r['wall_s']} | {r['cpu_s_main']}+{r['cpu_s_workers']} | "
              f"{' / '.join(map(str, r['rss_at_quarters_mb']))} | {r['rss_peak_mb']} |")
    print()
    for shar in (r for r in args.readers if r in SHARDS and "files" in args.readers):
        print(f"files: {files['files']} per-item vs {files[shar]} in {shar} ({files['files'] / files[shar]:.0f}x fewer)")
        for workers in args.workers:
            def median(key, kind):
                return float(np.median([key(r) for r in results if r["reader"] == kind and r["workers"] == workers]))

            ratio = lambda key: median(key, shar) / median(key, "files")  # noqa: E731
            print(f"  {workers} workers: {shar}/files items/s {ratio(lambda r: r['items_per_s']):.2f}x (after the 1st "
                  f"batch {ratio(lambda r: r['items_per_s_after_first']):.2f}x); CPU s per epoch files/{shar} "
                  f"{1 / ratio(lambda r: r['cpu_s_main'] + r['cpu_s_workers']):.2f}x (medians of {args.repeat})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.out:
        args.out.write_text(json.dumps({"items": args.items, "shard_size": args.shard_size, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
