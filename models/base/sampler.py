"""Deterministic, resumable, shardable batch sampling.

The order of epoch ``e`` is a permutation drawn from ``seed + e`` alone, so a run resumed in the middle of
an epoch sees exactly the batches it would have seen without the interruption (``start_batch`` skips the
ones already consumed). Each process of a multi-GPU run takes every ``world_size``-th batch, so no
accelerate data-loader wrapping (and none of its hidden RNG synchronisation) is needed.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[List[int]]):
    """Yields lists of dataset indices.

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
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.lengths = list(lengths) if lengths is not None else None
        self.bucket_size = bucket_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def _all_batches(self) -> List[List[int]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
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
        # equal number of batches on every process
        usable = len(batches) - len(batches) % self.world_size
        return batches[self.rank : usable : self.world_size]

    def __iter__(self) -> Iterator[List[int]]:
        batches = self._all_batches()
        yield from batches[self.start_batch :]

    def __len__(self) -> int:
        return max(len(self._all_batches()) - self.start_batch, 0)

    def batches_per_epoch(self) -> int:
        return len(self._all_batches())
