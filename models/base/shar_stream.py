"""Streamed training from Lhotse Shar shards (``data.format: "shar"``): disjoint reads, exact epochs and resume.

A family opts in by mapping one Lhotse cut to the item its map-style dataset would give
(``BaseTrainer.item_from_cut``); everything else is here:

* **Disjoint reads.** Epoch ``e`` permutes the shards with ``train.seed + e`` and deals them in that order, each to
  the rank with the fewest items so far; each rank deals its shards to its ``N`` dataloader workers the same way. Each worker
  reads its shards front to back (sequential reads: the point of shards), only the fields the family needs.
* **Batches.** Each worker runs Lhotse's dynamic bucketing (``DynamicBucketer``, the core of
  :class:`~lhotse.dataset.DynamicBucketingSampler`) over its stream:
  ``train.batching`` ``duration`` gives ``max_seconds`` as the sampler's ``max_duration`` (summed seconds per
  batch; within a duration bucket that is close to the padded total) and ``max_items`` as ``max_cuts``;
  ``fixed`` gives ``train.batch_size`` as ``max_cuts``.  Duration bins come from the first shards' metadata,
  so every rank and worker uses the same ones; its seeds are drawn from (seed, epoch, rank, worker).
* **Every item once per epoch, the same step count on every rank.** Before an epoch each rank runs the same
  samplers over the shards' metadata only (``cuts.*.jsonl.gz``; no audio) and learns its batch count; ranks
  agree on the largest (one all-gather of an integer), and a rank with fewer batches splits its first
  multi-item batches until it has as many (possible while the rank has at least that many items). No item is dropped or repeated, so DDP never waits on a rank that
  ran dry.
* **Exact resume.** The order of a rank's batches is the dataloader's round robin over its workers, fixed by
  the plan; resuming at batch ``k`` of an epoch makes every worker skip the batches it had delivered among the
  first ``k`` (read, not decoded). The checkpoint records world size and worker count; a resume with other
  values is refused (the shard assignment, and with it the batches, would differ).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from models.base.sampler import BatchingConfig
from processors.data.shar import CutMeta, ShardInfo, list_shards, read_cut_metadata
from processors.data.shar_reader import iter_shar_cuts
from utils.wording import plural

BIN_ESTIMATE_SHARDS = 20  # shards whose durations set the bucket bins (the same on every rank)


class StreamError(ValueError):
    """Shards that cannot feed this run (too few for the ranks, a missing field, a resume that cannot be exact)."""


@dataclass
class ShardedDataConfig:
    """Fields every family's ``data`` section inherits: where training items come from."""

    format: Literal["files", "shar"] = "files"  # files: the family's manifests/feature folders; shar: shards
    shar_dir: str = ""  # folder written by `bins.extract_features --format shar`
    shar_buffer: int = 500  # cuts each worker holds for bucketing and shuffling (memory: buffer x item size)


def item_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts (e.g. seed, epoch, cut id): the same in every process."""
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def round_robin_position(counts: Sequence[int], consumed: int) -> Tuple[List[int], int]:
    """After the first ``consumed`` batches of a round robin over workers with ``counts`` batches each (a worker
    drops out when it is used up: PyTorch's dataloader order for iterable datasets): how many each worker had
    delivered, and which worker delivers next."""
    taken = [0] * len(counts)
    if consumed > sum(counts):
        raise StreamError(f"resume at batch {consumed} of an epoch that has {sum(counts)} batches")
    worker = 0
    for _ in range(consumed):
        while taken[worker] >= counts[worker]:
            worker = (worker + 1) % len(counts)
        taken[worker] += 1
        worker = (worker + 1) % len(counts)
    while consumed < sum(counts) and taken[worker] >= counts[worker]:
        worker = (worker + 1) % len(counts)
    return taken, worker


def _least_loaded(shards: Sequence[ShardInfo], parts: int) -> List[List[ShardInfo]]:
    """Deal shards, in order, each to the part with the fewest items so far (ties: the lowest part)."""
    dealt: List[List[ShardInfo]] = [[] for _ in range(parts)]
    load = [0] * parts
    for shard in shards:
        part = load.index(min(load))
        dealt[part].append(shard)
        load[part] += shard.items
    return dealt


class ShardStream(IterableDataset):
    """Collated training batches streamed from Shar shards (one rank's share; see the module doc).

    Args:
        shar_dir: folder of shards (Echelon's or any Lhotse Shar folder).
        fields: Shar fields to read besides ``cuts`` (e.g. ``["recording", "mel"]``); None: all.
        to_item: cut -> item (the family's ``item_from_cut``); collate: list of items -> batch.
        batching, batch_size: ``train.batching`` and ``train.batch_size``.
        seed, rank, world_size, num_workers: as the trainer's.
        buffer: cuts a worker's sampler holds for bucketing and shuffling.
        agree: this rank's batch count -> every rank's (an all-gather; identity with one process).
        keep: which cuts train (from their :class:`CutMeta`; the family's filter, e.g. text it can read): the
            others are left out of the plan and the stream alike, so every kept item is still seen once.
    """

    def __init__(self, shar_dir: str | Path, fields: Optional[Sequence[str]], to_item: Callable[[Any], Any],
                 collate: Callable[[List[Any]], Any], batching: BatchingConfig, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0, buffer: int = 500,
                 agree: Callable[[int], List[int]] = lambda n: [n],
                 keep: Callable[[CutMeta], bool] = lambda meta: True) -> None:
        self.shards: List[ShardInfo] = list_shards(shar_dir)
        if len(self.shards) < world_size:
            raise StreamError(f"{shar_dir}: {plural(len(self.shards), 'shard')} for {plural(world_size, 'rank')}; "
                             f"every rank needs at least one: write smaller shards (--shard_size)")
        missing = sorted({f for s in self.shards for f in (fields or [])} - set(self.shards[0].files))
        if missing:
            raise StreamError(f"{shar_dir}: the shards do not hold {missing} (they hold "
                             f"{sorted(self.shards[0].files)}): extract them with --features")
        self.fields = ["cuts", *(fields if fields is not None else [f for f in self.shards[0].files if f != "cuts"])]
        self.to_item, self.collate, self.agree, self.keep = to_item, collate, agree, keep
        self.batching, self.batch_size, self.seed = batching, batch_size, seed
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.buffer = buffer
        self.duration_bins = self._bins()
        self.epoch, self.start_batch = 0, 0
        self.counts: List[int] = []  # batches per worker this epoch, after balancing
        self.splits: List[int] = []  # batches each worker halves to reach the agreed count

    # ------------------------------------------------------------------ the plan (metadata only)
    def _metadata(self, shard: ShardInfo) -> List[CutMeta]:
        """A shard's cut metadata, read again each epoch (kept, at 10,000 hours it would be GBs per rank)."""
        return read_cut_metadata(shard.files["cuts"])

    def _bins(self) -> List[float]:
        from lhotse.dataset.sampling.dynamic_bucketing import estimate_duration_buckets

        if self.batching.buckets <= 1:
            return []  # one bucket: no bins, and no shard metadata to read for them
        cuts = [c for shard in self.shards[:BIN_ESTIMATE_SHARDS] for c in self._metadata(shard)]
        if len({c.duration for c in cuts}) < 2:
            return []
        return [float(b) for b in estimate_duration_buckets(cuts, min(self.batching.buckets, len(cuts)))]

    def worker_shards(self, epoch: int, rank: int, worker: int) -> List[ShardInfo]:
        order = torch.randperm(len(self.shards), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        mine = _least_loaded([self.shards[i] for i in order], self.world_size)[rank]
        return _least_loaded(mine, max(1, self.num_workers))[worker]

    def _sampler(self, cuts, worker: int):
        """Lhotse's dynamic bucketing over one worker's cut stream (its DynamicBucketer: the sampler's core,
        with both of its RNGs seeded here; the sampler itself seeds bucket choice by dataloader worker id)."""
        from lhotse.dataset.sampling.dynamic_bucketing import DynamicBucketer

        duration = self.batching.type == "duration"
        seed = item_seed(self.seed, self.epoch, self.rank, worker)
        return DynamicBucketer(
            cuts, duration_bins=self.duration_bins, world_size=1,
            max_duration=self.batching.max_seconds if duration else None,
            max_cuts=self.batching.max_items if duration else self.batch_size,
            drop_last=False, buffer_size=self.buffer, shuffle=True,
            rng=random.Random(seed), bucket_rng=random.Random(seed + 1),
        )  # fmt: skip

    def _cuts(self, shards: List[ShardInfo]):
        """The cuts ``CutSet.from_shar`` gives for these shards and fields (read without ``tarfile``: shar_reader)."""
        return iter_shar_cuts({f: [s.files[f] for s in shards] for f in self.fields})

    def _worker_plan(self, worker: int) -> List[int]:
        """Sizes of worker ``worker``'s batches this epoch, from the shards' metadata."""
        shards = self.worker_shards(self.epoch, self.rank, worker)
        metadata = [c for shard in shards for c in self._metadata(shard) if self.keep(c)]
        return [len(batch) for batch in self._sampler(metadata, worker)] if shards else []

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Plan epoch ``epoch`` (every rank calls it at the same time: the ranks agree on the step count)."""
        self.epoch, self.start_batch = epoch, start_batch
        plans = [self._worker_plan(w) for w in range(max(1, self.num_workers))]
        total = max(self.agree(sum(len(p) for p in plans)))
        deficit = total - sum(len(p) for p in plans)
        self.splits = []
        for plan in plans:
            take = min(deficit, sum(size - 1 for size in plan))  # a batch of n items splits into up to n
            self.splits.append(take)
            deficit -= take
        if deficit:
            raise StreamError(f"rank {self.rank} has too few items to match the other ranks' {total} batches in "
                             f"epoch {epoch}: write more, smaller shards (--shard_size) or use fewer ranks")
        self.counts = [len(p) + s for p, s in zip(plans, self.splits)]

    def __len__(self) -> int:
        return max(sum(self.counts) - self.start_batch, 0)

    # ------------------------------------------------------------------ streaming (in the workers)
    def _batches(self, worker: int) -> Iterator[List[Any]]:
        shards = self.worker_shards(self.epoch, self.rank, worker)
        if not shards:
            return
        to_split = self.splits[worker]
        kept = (cut for cut in self._cuts(shards) if self.keep(CutMeta.of(cut)))
        for batch in self._sampler(kept, worker):
            cuts = list(batch)
            extra = min(to_split, len(cuts) - 1)
            to_split -= extra
            yield from (part.tolist() for part in np.array_split(np.array(cuts, dtype=object), extra + 1))

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        if info is None and self.num_workers > 1:
            raise RuntimeError("ShardStream planned for several workers is iterated without a DataLoader")
        taken, first = round_robin_position(self.counts, self.start_batch)
        # the dataloader starts its round robin at its worker 0: rotate so that it is the one whose turn it is
        worker = ((info.id if info is not None else 0) + first) % len(self.counts)
        skip = taken[worker]
        for cuts in itertools.islice(self._batches(worker), skip, None):
            yield self.collate([self.to_item(cut) for cut in cuts])

    def loader(self) -> DataLoader:
        """The DataLoader that gives this rank's batches in the planned order."""
        return DataLoader(self, batch_size=None, num_workers=self.num_workers)


def cut_crop_rng(seed: int, epoch: int, cut_id: str) -> np.random.Generator:
    """Random crops of streamed items: drawn from (seed, epoch, cut id), independent of worker and order."""
    return np.random.default_rng(item_seed(seed, epoch, cut_id))


def data_format(config: Any) -> str:
    """``data.format`` of an experiment config ("files" for a family whose data section has none)."""
    return getattr(getattr(config, "data", None), "format", "files")


def build_stream(trainer: Any) -> ShardStream:
    """The training stream of a :class:`models.base.trainer.BaseTrainer` with ``data.format: "shar"``."""
    from models.base.distributed import gather_objects

    data, tc, acc = trainer.cfg.data, trainer.train_cfg, trainer.accelerator
    if getattr(type(trainer).item_from_cut, "__qualname__", "") == "BaseTrainer.item_from_cut":
        raise StreamError(f'data.format "shar": model type {trainer.cfg.model_type!r} cannot train from shards yet '
                         f"(its trainer maps no Lhotse cut to an item: item_from_cut)")
    if not data.shar_dir:
        raise StreamError('data.format "shar" needs data.shar_dir (written by bins.extract_features --format shar)')
    return ShardStream(data.shar_dir, trainer.shar_fields, trainer.item_from_cut, trainer.collate, tc.batching,
                       tc.batch_size, tc.seed, acc.process_index, acc.num_processes, tc.num_workers, data.shar_buffer,
                       agree=lambda n: gather_objects(n, acc.num_processes), keep=trainer.keep_cut)


def check_resume_layout(saved_ranks: int, ranks: int, saved_workers: Optional[int], workers: int,
                        streamed: bool) -> None:
    """Refuse a resume whose batches could not continue the interrupted run's: another world size (each rank's
    batches and RNG stream depend on it) or, for streamed shards, another dataloader worker count."""
    if saved_ranks != ranks:
        raise StreamError(f"cannot resume: the checkpoint was written by {saved_ranks} process(es) and this run has "
                         f"{ranks}; batches and RNG streams are per rank, so resume with {saved_ranks} (or start a "
                         f"new run from its weights with --init_from)")
    if streamed and saved_workers is not None and saved_workers != workers:
        raise StreamError(f"cannot resume: the checkpoint streamed shards with train.num_workers={saved_workers}, this "
                         f"run has {workers}; shards are assigned per worker, so resume with {saved_workers}")
