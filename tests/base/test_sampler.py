"""Batch samplers: fixed-size batches are exactly the epoch permutation cut in order; duration batches fill
their budget from one duration bucket, cover every item once, shard evenly and resume at any batch."""

import pytest
import torch

from models.base.sampler import BatchingConfig, DurationBatchSampler, ResumableBatchSampler, build_batch_sampler
from utils.config import ConfigError, validate
from models.base.trainer import TrainConfig


def test_fixed_batches_are_the_epoch_permutation():
    sampler = build_batch_sampler(BatchingConfig(), num_items=10, batch_size=3, seed=7, train=True)
    assert isinstance(sampler, ResumableBatchSampler)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        order = torch.randperm(10, generator=torch.Generator().manual_seed(7 + epoch)).tolist()
        assert list(sampler) == [order[0:3], order[3:6], order[6:9], order[9:10]]
    valid = build_batch_sampler(BatchingConfig(), num_items=5, batch_size=2, seed=7, train=False, rank=1, world_size=2)
    assert list(valid) == [[0, 1], [2, 3], [4]]  # validation: natural order, unsharded


DURATIONS = [0.5 + 0.37 * ((i * 7) % 23) for i in range(40)]  # 0.5 .. 8.6 s, deterministic


def _epoch(rank=0, world_size=1, epoch=0, start=0, **kw):
    args = dict(max_seconds=12.0, buckets=4, seed=3, rank=rank, world_size=world_size)
    sampler = DurationBatchSampler(DURATIONS, **{**args, **kw})
    sampler.set_epoch(epoch, start_batch=start)
    return list(sampler), sampler


def test_duration_batches_respect_budget_and_buckets():
    batches, sampler = _epoch()
    assert sorted(i for b in batches for i in b) == list(range(40))  # every item exactly once
    bucket_of = {i: k for k, bucket in enumerate(sampler.buckets) for i in bucket}
    for batch in batches:
        longest = max(DURATIONS[i] for i in batch)
        assert len(batch) * longest <= 12.0 or len(batch) == 1
        assert len({bucket_of[i] for i in batch}) == 1
    # buckets are duration quantiles: every item of bucket k is no longer than any item of bucket k + 1
    for lo, hi in zip(sampler.buckets, sampler.buckets[1:]):
        assert max(DURATIONS[i] for i in lo) <= min(DURATIONS[i] for i in hi)
    capped, _ = _epoch(max_items=2)
    assert max(len(b) for b in capped) == 2


def test_duration_batches_are_deterministic_per_epoch_and_shard_evenly():
    assert _epoch(epoch=1)[0] == _epoch(epoch=1)[0]
    assert _epoch(epoch=1)[0] != _epoch(epoch=2)[0]
    whole = _epoch(epoch=1)[0]
    shards = [_epoch(rank=r, world_size=3, epoch=1)[0] for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # same number of steps on every process
    usable = len(whole) - len(whole) % 3
    assert [b for step in zip(*shards) for b in step] == whole[:usable]
    resumed, sampler = _epoch(epoch=1, start=3)
    assert resumed == whole[3:] and len(sampler) == len(whole) - 3


def test_duration_batching_needs_durations_and_a_budget():
    with pytest.raises(ValueError, match="item 2 has 0.0"):
        DurationBatchSampler([1.0, 2.0, 0.0], max_seconds=4)
    with pytest.raises(ConfigError, match="max_seconds"):
        validate({"batching": {"type": "duration"}}, TrainConfig)
    cfg = validate({"batching": {"type": "duration", "max_seconds": 30, "buckets": 3}}, TrainConfig)
    assert cfg.batching == BatchingConfig("duration", 30.0, 3, None)
