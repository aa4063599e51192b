"""Deterministic, resumable, shardable batch sampling: fixed-size batches or batches by total duration.

The order of epoch ``e`` is drawn from ``seed + e`` alone, so a run resumed in the middle of an epoch sees
exactly the batches it would have seen without the interruption (``start_batch`` skips the ones already
consumed). Each process of a multi-process run takes every ``world_size``-th batch of the same list, and the
list is cut to a multiple of ``world_size`` so every process runs the same number of steps; no accelerate
data-loader wrapping (and none of its hidden RNG synchronisation) is needed.

``train.batching`` picks the sampler (:func:`build_batch_sampler`):

* ``{type: "fixed"}`` (default): ``train.batch_size`` items per batch (:class:`ResumableBatchSampler`);
* ``{type: "duration", max_seconds: 120, buckets: 10}``: items are grouped into ``buckets`` duration
  quantiles and each batch holds as many items of one bucket as fit in ``max_seconds`` of padded audio
  (items × longest item), per process (:class:`DurationBatchSampler`). Durations come from the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Literal, Optional, Sequence

import torch
from torch.utils.data import Sampler


@dataclass
class BatchingConfig:
    """How training batches are formed (``train.batching``)."""

    type: Literal["fixed", "duration"] = "fixed"
    max_seconds: float = 0.0  # duration: padded seconds of audio per batch and process
    buckets: int = 10  # duration: number of duration quantiles batches are drawn from
    max_items: Optional[int] = None  # duration: optional cap on items per batch

    def __post_init__(self) -> None:
        if self.type == "duration" and self.max_seconds <= 0:
            raise ValueError("batching type 'duration' needs max_seconds > 0")
        if self.buckets < 1:
            raise ValueError(f"buckets must be >= 1, got {self.buckets}")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")


class _EpochBatchSampler(Sampler[List[int]]):
    """Shared epoch / resume / sharding logic; subclasses define the full batch list of one epoch."""

    def __init__(self, seed: int, shuffle: bool, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def _epoch_batches(self, gen: torch.Generator) -> List[List[int]]:
        raise NotImplementedError

    def _all_batches(self) -> List[List[int]]:
        """This process's batches of the current epoch (the same count on every process)."""
        batches = self._epoch_batches(torch.Generator().manual_seed(self.seed + self.epoch))
        usable = len(batches) - len(batches) % self.world_size
        return batches[self.rank : usable : self.world_size]

    def __iter__(self) -> Iterator[List[int]]:
        yield from self._all_batches()[self.start_batch :]

    def __len__(self) -> int:
        return max(len(self._all_batches()) - self.start_batch, 0)


class ResumableBatchSampler(_EpochBatchSampler):
    """Fixed-size batches of dataset indices.

    Args:
        num_items: dataset length.
        batch_size: items per batch (per process).
        seed: base seed; epoch ``e`` uses ``seed + e``.
        shuffle: permute each epoch (else natural order).
        drop_last: drop an incomplete last batch.
        rank, world_size: this process's shard.
        lengths: optional item lengths; when given, batches are formed from length-sorted buckets of
            ``bucket_size`` batches to cut padding (the bucket order is still shuffled by the epoch seed).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        lengths: Optional[Sequence[float]] = None,
        bucket_size: int = 16,
    ):
        if num_items <= 0:
            raise ValueError("the dataset is empty: nothing to sample")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        super().__init__(seed, shuffle, rank, world_size)
        self.num_items = num_items
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.lengths = list(lengths) if lengths is not None else None
        self.bucket_size = bucket_size

    def _epoch_batches(self, gen: torch.Generator) -> List[List[int]]:
        order = torch.randperm(self.num_items, generator=gen).tolist() if self.shuffle else list(range(self.num_items))
        if self.lengths is not None:
            chunk = self.batch_size * self.bucket_size
            sorted_order: List[int] = []
            for i in range(0, len(order), chunk):
                sorted_order += sorted(order[i : i + chunk], key=lambda j: self.lengths[j])
            order = sorted_order
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.lengths is not None and self.shuffle:
            perm = torch.randperm(len(batches), generator=gen).tolist()
            batches = [batches[i] for i in perm]
        return batches


class DurationBatchSampler(_EpochBatchSampler):
    """Batches that fill a budget of padded seconds, drawn from duration buckets.

    Items are sorted by duration once and split into ``buckets`` groups of (nearly) equal count. Each epoch
    the items of every bucket are permuted by the epoch seed and packed greedily: a batch takes items while
    ``items × longest item <= max_seconds`` (and ``items <= max_items``); an item longer than the budget gets
    a batch of its own. The batches of all buckets are then permuted together. Without ``shuffle`` (validation)
    the order is the sorted one.

    Args:
        durations: seconds per dataset item (> 0).
        max_seconds: padded seconds per batch and process.
        buckets: number of duration quantiles.
        max_items: optional cap on items per batch.
        seed, shuffle, rank, world_size: as :class:`ResumableBatchSampler`.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        buckets: int = 10,
        max_items: Optional[int] = None,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if len(durations) == 0:
            raise ValueError("the dataset is empty: nothing to sample")
        bad = [i for i, d in enumerate(durations) if not d > 0]
        if bad:
            raise ValueError(f"duration batching needs every item's duration > 0; item {bad[0]} has "
                             f"{durations[bad[0]]!r} ({len(bad)} such items: fill 'duration' in the manifest)")  # fmt: skip
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        super().__init__(seed, shuffle, rank, world_size)
        self.durations = [float(d) for d in durations]
        self.max_seconds = float(max_seconds)
        self.max_items = max_items
        by_length = sorted(range(len(self.durations)), key=lambda i: (self.durations[i], i))
        count = min(buckets, len(by_length))
        edges = [round(b * len(by_length) / count) for b in range(count + 1)]
        self.buckets = [by_length[edges[b] : edges[b + 1]] for b in range(count)]

    def _pack(self, items: List[int]) -> List[List[int]]:
        batches: List[List[int]] = []
        current: List[int] = []
        longest = 0.0
        for i in items:
            longest_with = max(longest, self.durations[i])
            full = self.max_items is not None and len(current) >= self.max_items
            if current and (full or (len(current) + 1) * longest_with > self.max_seconds):
                batches.append(current)
                current, longest_with = [], self.durations[i]
            current.append(i)
            longest = longest_with
        if current:
            batches.append(current)
        return batches

    def _epoch_batches(self, gen: torch.Generator) -> List[List[int]]:
        batches: List[List[int]] = []
        for bucket in self.buckets:
            if self.shuffle:
                bucket = [bucket[i] for i in torch.randperm(len(bucket), generator=gen).tolist()]
            batches += self._pack(bucket)
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        return batches


def build_batch_sampler(
    batching: BatchingConfig,
    *,
    num_items: int,
    batch_size: int,
    seed: int,
    train: bool,
    rank: int = 0,
    world_size: int = 1,
    lengths: Optional[Sequence[float]] = None,
    durations: Optional[Sequence[float]] = None,
) -> _EpochBatchSampler:
    """The sampler ``batching`` names. Training batches shuffle and shard; validation ones do neither."""
    if not train:
        rank, world_size = 0, 1
    if batching.type == "duration":
        if durations is None:
            raise ValueError("train.batching type 'duration' needs the items' durations")
        return DurationBatchSampler(durations, batching.max_seconds, batching.buckets, batching.max_items,
                                    seed=seed, shuffle=train, rank=rank, world_size=world_size)  # fmt: skip
    return ResumableBatchSampler(num_items, batch_size, seed=seed, shuffle=train, rank=rank, world_size=world_size,
                                 lengths=lengths if train else None)  # fmt: skip
