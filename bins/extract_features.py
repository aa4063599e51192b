"""Extract registered features (mel, linear, f0, ssl, codec codes, ...) for manifests or a folder of audio.

    python -m bins.extract_features --manifest data/train.jsonl --out_dir exp/features --features mel f0 ssl \\
        --set f0.method=dio f0.f0_max=400 ssl.model=facebook/mms-300m ssl.layer=7 --nj 4
    python -m bins.extract_features --list                       # registered features and their settings

Sharded over processes or machines (each shard takes a fixed, disjoint share of the items), then merged:

    python -m bins.extract_features ... --shard 0/2  &  python -m bins.extract_features ... --shard 1/2
    python -m bins.extract_features ... --merge              # same manifests and features; checks all shards
    torchrun --nproc_per_node 4 -m bins.extract_features ... --device cuda   # RANK/WORLD_SIZE give the shard,
                                                     # LOCAL_RANK the GPU; rank 0 waits for the others and merges

Lhotse Shar shards instead of one file per item and feature (audio + features + text/speaker/extra; the
format training streams with ``data.format: "shar"``; see processors/data/shar.py):

    python -m bins.extract_features --manifest data/train.jsonl --out_dir exp/shar --features mel f0 \
        --format shar --shard_size 1000          # resumable per shard; --shard i/n / RANK split the shards
    python -m bins.extract_features --manifest data/train.jsonl --out_dir exp/shar --features mel f0 \
        --format shar --from_features exp/features   # an existing per-item extraction, converted

Resumable (finished files are kept: ``--skip_existing`` is the default; ``--overwrite`` recomputes), atomic,
bad items listed with reasons in a new file per run (``runs/<job>/``) and in the current
``<out_dir>/bad_items.tsv``, the first five also on the console; see processors/data/extract.py and shards.py.
Ctrl-C (SIGINT) or SIGTERM stop after the running items (``N extracted, M failed, K not started: rerun with
--skip_existing``). Exit status, like every Echelon batch CLI: 0 when every item was extracted, 1 when any
item was bad (listed; the others are kept; with ``--allow_failures`` 0), 2 on usage errors (unreadable
manifest, unknown feature or setting, model not loadable, unusable device or output folder), 4 when a merge
finds a shard unfinished or a file missing, 130/143 when stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

from processors.data.extract import check_unique, extract_features
from processors.data.manifest import ManifestEntry, ManifestError, read_manifest
from processors.data.preparers import PreparerError, scan_folder
from processors.data.shar import AUDIO_FORMATS, SharOptions, merge_shar, shar_finished, stored_features, write_shar
from processors.data.shards import Shard, ShardError, local_rank_from_env, merge_shards, shard_from_env, shards_finished
from processors.features.base import FeatureError, build_extractor
from utils.batch import EXIT_PARTIAL, add_rerun_arguments, failure_lines, summary_line
from utils.cli import ArgumentParser
from utils.devices import DeviceError, resolve_device
from utils.io import OutputPathError, check_writable_dir
from utils.wording import plural

EXIT_USAGE, EXIT_BAD_ITEMS, EXIT_INCOMPLETE = 2, EXIT_PARTIAL, 4
DEFAULT_FEATURES = ("mel", "linear", "f0", "ssl")  # what HierSpeech++ trains on
# Shorthands kept from the HierSpeech-only CLI: flag -> (feature, setting); --sample_rate sets every feature's.
SHORTHANDS = {"f0_method": ("f0", "method"), "f0_max": ("f0", "f0_max"), "ssl_model": ("ssl", "model"),
              "ssl_layer": ("ssl", "layer")}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="extract_features", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--manifest", type=Path, action="append", help="JSONL manifest (repeatable)")
    source.add_argument("--input_dir", type=Path, help="a folder of audio files instead of a manifest")
    parser.add_argument("--out_dir", type=Path)
    parser.add_argument("--features", nargs="+", default=list(DEFAULT_FEATURES),
                        help=f"registered feature names, space or comma separated, or none (shar: audio alone) "
                             f"(default: {' '.join(DEFAULT_FEATURES)})")
    parser.add_argument("--set", dest="settings", nargs="+", action="extend", default=[], metavar="FEATURE.KEY=VALUE",
                        help="per-feature settings, e.g. f0.method=dio ssl.layer=7 (see --list)")
    parser.add_argument("--list", action="store_true", help="print the registered features and their settings")
    parser.add_argument("--nj", type=int, default=1, help="worker processes for the per-item features")
    parser.add_argument("--batch_size", "--ssl_batch_size", type=int, default=4, help="batch of batched features")
    parser.add_argument("--device", default="cpu", help="device of batched features; 'cuda' + LOCAL_RANK -> cuda:<rank>")
    parser.add_argument("--min_duration", type=float, default=0.1, help="seconds; shorter items are bad")
    parser.add_argument("--shard", type=Shard.parse, default=None, metavar="I/N", help="process shard I of N (0-based)")
    parser.add_argument("--merge", action="store_true", help="check all shards finished and write the summary")
    parser.add_argument("--merge_wait", type=float, default=3600.0,
                        help="seconds rank 0 of a launcher waits for the other ranks before merging (0: do not merge)")
    parser.add_argument("--run_id", default=None, help="names this run's bad-item list (default: UTC time + pid)")
    add_rerun_arguments(
        parser, overwrite="recompute existing features",
        skip_existing="keep features already extracted and do the rest (the default; accepted for symmetry with the "
                      "other batch CLIs)",
        allow_failures=f"exit 0 although some items were bad (they are listed); default: exit {EXIT_BAD_ITEMS}")
    parser.add_argument("--format", choices=("files", "shar"), default="files",
                        help="files: <out_dir>/<feature>/<id>.pt; shar: Lhotse Shar shards (streamed training)")
    parser.add_argument("--shard_size", type=int, default=1000, help="shar: items per shard")
    parser.add_argument("--audio_format", choices=AUDIO_FORMATS, default="flac", help="shar: audio encoding")
    parser.add_argument("--audio_rate", type=int, default=None, help="shar: Hz of the stored audio (default: "
                        "the first feature's)")
    parser.add_argument("--audio_rate_of", type=Path, default=None, metavar="CONFIG",
                        help="shar: store the audio at the rate this training config's family reads it at (its "
                             "data.sample_rate, model.sample_rate or model.target_rate, defaults included)")
    parser.add_argument("--from_features", type=Path, default=None, metavar="DIR",
                        help="shar: read the features from this per-item folder instead of computing them")
    parser.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)  # the former opt-in; now default
    for flag in SHORTHANDS:
        parser.add_argument(f"--{flag}", default=None, help=f"= --set {'.'.join(SHORTHANDS[flag])}=...")
    parser.add_argument("--sample_rate", default=None, help="= --set <feature>.sample_rate=... for every feature")
    return parser


def feature_names(values: List[str]) -> List[str]:
    """Names from space/comma separated values; ``none`` alone: no feature (shards of audio alone)."""
    return [name.strip() for value in values for name in value.split(",") if name.strip() and name.strip() != "none"]


def feature_options(args: argparse.Namespace, names: List[str]) -> Dict[str, Dict[str, str]]:
    """``--set`` and the shorthands as {feature: {key: value}}; a setting for an unselected feature fails."""
    options: Dict[str, Dict[str, str]] = defaultdict(dict)
    if args.sample_rate is not None:
        for name in names:
            options[name]["sample_rate"] = args.sample_rate
    for flag, (feature, key) in SHORTHANDS.items():
        if getattr(args, flag) is not None and feature in names:
            options[feature][key] = getattr(args, flag)
    for item in args.settings:
        target, sep, value = item.partition("=")
        feature, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise FeatureError(f"--set {item!r}: expected FEATURE.KEY=VALUE, e.g. f0.method=dio")
        if feature not in names:
            raise FeatureError(f"--set {item!r}: feature {feature!r} is not among --features {' '.join(names)}")
        options[feature][key] = value
    return options


def _entries(args: argparse.Namespace) -> List[ManifestEntry]:
    if args.input_dir is not None:
        return [ManifestEntry(i, p, spk, text, 0.0, 0) for i, p, spk, text, _ in scan_folder(args.input_dir)]
    entries: List[ManifestEntry] = []
    for manifest in args.manifest:
        entries.extend(read_manifest(manifest))
    return entries


def _device(device: str) -> str:
    local_rank = local_rank_from_env()
    return f"cuda:{local_rank}" if device == "cuda" and local_rank is not None else device


def _list_features() -> int:
    import dataclasses

    from utils.registry import get, names

    for name in names("feature"):
        cls = get("feature", name)
        settings = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Settings))
        kind = "batched" if cls.batched else "per item"
        print(f"{name}: {cls.__module__}.{cls.__name__} ({kind}, {str(cls.storage_dtype).replace('torch.', '')}) {settings}")
    return 0


def _wait_and_merge(args, entries, descriptions, job: str, shard: Shard) -> Optional[dict]:
    """Rank 0 of a launcher: poll for the other shards' reports, then merge (None if they did not finish)."""
    deadline = time.monotonic() + args.merge_wait
    while not shards_finished(args.out_dir, job, shard.count):
        if time.monotonic() > deadline:
            return None
        time.sleep(2.0)
    return merge_shards(args.out_dir, entries, descriptions, args.run_id)


def run(args: argparse.Namespace) -> int:
    if args.from_features is not None and args.format != "shar":  # before anything is read or created
        raise FeatureError("--from_features converts a per-item feature folder to shards: add --format shar")
    names = feature_names(args.features)
    options = feature_options(args, names)
    entries = _entries(args)
    check_writable_dir(args.out_dir, "--out_dir")
    if args.from_features is not None:  # shards from an existing extraction: no model is loaded, no device used
        extractors = stored_features(args.from_features, names)
    else:
        device = _device(resolve_device(args.device))  # 'gpu' -> 'cuda', checked; under a launcher cuda:LOCAL_RANK
        extractors = [build_extractor(name, options.get(name, {}), device=device) for name in names]
    check_unique(entries, extractors, allow_none=args.format == "shar")  # shards may hold audio alone
    descriptions = [x.describe() for x in extractors]
    if args.format == "shar":
        return _run_shar(args, entries, extractors)
    if args.merge:
        summary = merge_shards(args.out_dir, entries, descriptions, args.run_id)
        print(f"extract_features: merged {plural(summary['num_shards'], 'shard')} of job {summary['job']}: "
              f"{plural(summary['done'], 'item')} done, {summary['bad']} bad (listed in "
              f"{args.out_dir / summary['bad_items']})")
        return _bad_items_status(summary["bad"], args)
    from_env = shard_from_env()
    shard = args.shard or from_env or Shard()
    report = extract_features(entries, args.out_dir, extractors, num_workers=args.nj, batch_size=args.batch_size,
                              min_duration=args.min_duration, overwrite=args.overwrite, shard=shard, run_id=args.run_id,
                              quiet=args.quiet)
    failures = failure_lines(sorted(report.bad.items()))
    if report.stopped is not None:
        print("\n".join([*failures, summary_line(len(report.done), len(report.bad), verb="extracted",
                                                  kept=len(report.skipped), not_started=len(report.not_started),
                                                  stopped=True)]))
        return report.stopped
    if failures:
        print("\n".join(failures))
    print(f"extract_features: {shard.tag}: {len(report.done)} computed, {len(report.skipped)} already done, "
          f"{len(report.bad)} bad (listed in {report.bad_items_path})")
    merged = report.merged
    if merged is None and args.shard is None and from_env is not None and shard.index == 0 and args.merge_wait > 0:
        merged = _wait_and_merge(args, entries, descriptions, report.job, shard)
        if merged is None:
            print(f"extract_features: the other shards did not finish within {args.merge_wait:.0f} s; "
                  f"run with --merge later", file=sys.stderr)
            return EXIT_INCOMPLETE
    if merged is not None:
        print(f"extract_features: job {merged['job']}: {merged['done']} of {plural(merged['items'], 'item')} done, "
              f"{merged['bad']} bad (current list: {args.out_dir / 'bad_items.tsv'})")
    elif shard.count > 1 and from_env is None:
        print(f"extract_features: {shard.tag} finished; merge when all {shard.count} are done: same command with --merge")
    return _bad_items_status(len(report.bad), args)


def audio_rate(args: argparse.Namespace) -> Optional[int]:
    """``--audio_rate``, or the training audio rate of ``--audio_rate_of``'s family (None: the first feature's)."""
    if args.audio_rate_of is None:
        return args.audio_rate
    from models.base.experiment_config import training_audio_rate
    from utils.config import ConfigError, load_config, validate
    from utils.registry import get

    if args.audio_rate is not None:
        raise ConfigError("give --audio_rate or --audio_rate_of, not both")
    raw = load_config(args.audio_rate_of, [])
    if not raw.get("model_type"):
        raise ConfigError(f"{args.audio_rate_of}: missing 'model_type' (which family's audio rate to use)")
    return training_audio_rate(validate(raw, get("trainer", raw["model_type"]).config_class))


def _run_shar(args: argparse.Namespace, entries: List[ManifestEntry], extractors) -> int:
    """``--format shar``: this process's shards; rank 0 of a launcher (or a single process) merges."""
    if args.merge:
        summary = merge_shar(args.out_dir, entries, args.run_id)
    else:
        from_env = shard_from_env()
        process = args.shard or from_env or Shard()
        options = SharOptions(args.shard_size, args.audio_format, audio_rate(args))
        report = write_shar(entries, args.out_dir, extractors, options, features_dir=args.from_features,
                            num_workers=args.nj, batch_size=args.batch_size, min_duration=args.min_duration,
                            overwrite=args.overwrite, process=process, run_id=args.run_id)
        if report.stopped is not None:
            print(f"extract_features: stopped: {plural(len(report.written), 'shard')} written, "
                  f"{len(report.skipped)} already complete, {len(report.not_started)} not started: rerun the same "
                  "command to finish")
            return report.stopped
        print(f"extract_features: {process.tag}: {plural(len(report.written), 'shard')} written, "
              f"{len(report.skipped)} already complete, {plural(len(report.bad), 'bad item')} (listed in "
              f"{report.bad_items_path})")
        summary = report.merged
        if summary is None and args.shard is None and from_env is not None and process.index == 0 and args.merge_wait > 0:
            deadline = time.monotonic() + args.merge_wait
            while not shar_finished(args.out_dir) and time.monotonic() < deadline:
                time.sleep(2.0)
            summary = merge_shar(args.out_dir, entries, args.run_id)
        if summary is None:
            print(f"extract_features: {process.tag} finished; merge when all {process.count} are done: "
                  f"same command with --merge")
            return _bad_items_status(len(report.bad), args)
    print(f"extract_features: {plural(summary['num_shards'], 'shard')} in {args.out_dir}: "
          f"{plural(summary['done'], 'item')} ({summary['seconds'] / 3600:.2f} h), {summary['bad']} bad (listed in "
          f"{args.out_dir / 'bad_items.tsv'})")
    return _bad_items_status(summary["bad"], args)


def _bad_items_status(bad: int, args: argparse.Namespace) -> int:
    """Like every batch CLI: a run with bad items exits non-zero unless the user allowed failures."""
    return EXIT_BAD_ITEMS if bad and not args.allow_failures else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.list:
        return _list_features()
    if args.out_dir is None or (args.manifest is None and args.input_dir is None):
        parser.error("--out_dir and one of --manifest/--input_dir are required")
    try:
        return run(args)
    except ShardError as err:
        print(f"extract_features: {err}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print("\nextract_features: interrupted", file=sys.stderr)
        return 130
    except (ManifestError, PreparerError, FeatureError, DeviceError, OutputPathError, ValueError, OSError) as err:
        print(f"extract_features: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
