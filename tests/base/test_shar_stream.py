"""Streamed training from Lhotse Shar shards: 2 ranks x 2 dataloader workers read disjoint shards and see every
item exactly once per epoch in the same number of steps; a resume at any batch of an epoch continues exactly;
the toy model trained from shards sees every item once per epoch and resumes to the same weights; a resume
with another world size or worker count is refused with one line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet

from models.base import checkpoint as ckpt
from models.base.sampler import BatchingConfig
from models.base.shar_stream import ShardStream, check_resume_layout, round_robin_position
from models.base.tracker import read_log
from models.example.toy_autoencoder.trainer import ToyExperimentConfig, ToyTrainer
from processors.data.manifest import ManifestEntry
from processors.data.shar import SharOptions, list_shards, write_shar
from tests.helpers import REPO_ROOT
from utils.config import load_config, validate

RATE = 8000
BATCHINGS = [BatchingConfig(), BatchingConfig(type="duration", max_seconds=2.0, buckets=3)]


@pytest.fixture(scope="module")
def shar_dir(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("stream"))


def make_shards(root: Path) -> Path:
    """42 noise clips of 0.3-1.5 s in 9 shards of 5 (the last has 2)."""
    rng = np.random.default_rng(0)
    entries = []
    for i in range(42):
        n = int(rng.uniform(0.3, 1.5) * RATE)
        sf.write(root / f"a{i}.wav", (rng.standard_normal(n) * 0.1).astype(np.float32), RATE)
        entries.append(ManifestEntry(f"a{i:02d}", str(root / f"a{i}.wav"), "s", "t", n / RATE, RATE))
    write_shar(entries, root / "shar", [], SharOptions(shard_size=5, audio_rate=RATE, audio_format="wav"))
    return root / "shar"


def _ranks(shar_dir, batching, world_size, workers, epoch=0, start=0):
    """Every rank's batches of ids, the ranks simulated in this process (their plans agreed by hand)."""
    streams = [ShardStream(shar_dir, ["recording"], lambda cut: cut.id, list, batching, 4, seed=3, rank=r,
                           world_size=world_size, num_workers=workers, buffer=50) for r in range(world_size)]  # fmt: skip
    for stream in streams:
        stream.set_epoch(epoch)
    own = [sum(s.counts) for s in streams]
    for stream in streams:
        stream.agree = lambda n: own
        stream.set_epoch(epoch, start)
    return streams, [list(s.loader()) for s in streams]


@pytest.mark.parametrize("batching", BATCHINGS, ids=["fixed", "duration"])
def test_two_ranks_two_workers_read_disjoint_shards_and_see_every_item_once(shar_dir, batching):
    everything = sorted(f"a{i:02d}" for i in range(42))
    cuts = {s.index: list(CutSet.from_jsonl_lazy(s.files["cuts"])) for s in list_shards(shar_dir)}
    shard_of = {c.id: k for k, shard in cuts.items() for c in shard}
    seconds = {c.id: c.duration for shard in cuts.values() for c in shard}
    orders = []
    for epoch in (0, 1):
        streams, batches = _ranks(shar_dir, batching, world_size=2, workers=2, epoch=epoch)
        assert len(batches[0]) == len(batches[1])  # DDP needs the same step count on every rank
        seen = [i for rank in batches for batch in rank for i in batch]
        assert sorted(seen) == everything  # each item exactly once
        # each (rank, worker) reads its own shards: no shard is read twice
        shards = [s.index for st in streams for w in range(2) for s in st.worker_shards(epoch, st.rank, w)]
        assert sorted(shards) == sorted(s.index for s in list_shards(shar_dir))
        # a rank's items come only from its own shards; duration batches keep to their budget
        for stream, rank in zip(streams, batches):
            mine = {s.index for w in range(2) for s in stream.worker_shards(epoch, stream.rank, w)}
            assert {shard_of[i] for batch in rank for i in batch} == mine
            if batching.type == "duration":
                assert all(len(b) == 1 or sum(seconds[i] for i in b) <= 2.0 for b in rank)
        orders.append([i for rank in batches for batch in rank for i in batch])
    assert orders[0] != orders[1]  # a new epoch, a new order


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_at_any_batch_of_an_epoch_continues_exactly(shar_dir, workers):
    batching = BATCHINGS[1]
    _, (full,) = _ranks(shar_dir, batching, 1, workers, epoch=2)
    for start in range(len(full) + 1):
        _, (rest,) = _ranks(shar_dir, batching, 1, workers, epoch=2, start=start)
        assert rest == full[start:]


def test_round_robin_position_follows_the_dataloader_order():
    assert round_robin_position([3, 1, 2], 0) == ([0, 0, 0], 0)
    assert round_robin_position([3, 1, 2], 4) == ([2, 1, 1], 2)  # 0 1 2 0 | next: 2
    assert round_robin_position([3, 1, 2], 5) == ([2, 1, 2], 0)  # worker 1 dropped out
    with pytest.raises(ValueError, match="resume at batch 7"):
        round_robin_position([3, 1, 2], 7)


def test_a_rank_without_enough_shards_is_refused(shar_dir):
    with pytest.raises(ValueError, match="shard"):
        ShardStream(shar_dir, ["recording"], str, list, BATCHINGS[0], 4, seed=0, rank=0, world_size=20)
    with pytest.raises(ValueError, match="the shards do not hold"):
        ShardStream(shar_dir, ["mel"], str, list, BATCHINGS[0], 4, seed=0)


def test_resume_with_another_world_size_or_worker_count_is_refused():
    check_resume_layout(2, 2, 2, 2, streamed=True)
    check_resume_layout(1, 1, 0, 2, streamed=False)  # map-style batches do not depend on the workers
    with pytest.raises(ValueError, match="written by 2 process") as err:
        check_resume_layout(2, 1, 0, 0, streamed=False)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="num_workers=2"):
        check_resume_layout(1, 1, 2, 0, streamed=True)


class RecordingToyTrainer(ToyTrainer):
    """The toy trainer, noting which cut each streamed item came from (per epoch)."""

    seen: Counter

    def item_from_cut(self, cut):
        self.seen[(self.epoch, cut.id)] += 1
        return super().item_from_cut(cut)


def _toy_config(shar_dir, workers, **train):
    raw = load_config(REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5", [])
    raw["data"] = {"format": "shar", "shar_dir": str(shar_dir), "sample_rate": RATE, "segment": 2000}
    raw["train"].update({"tensorboard": False, "valid_every": 0, "num_workers": workers, "batch_size": 4,
                         "save_every": 0, **train})
    return validate(raw, ToyExperimentConfig)


def test_toy_model_from_shards_sees_every_item_once_per_epoch(shar_dir, tmp_path):
    trainer = RecordingToyTrainer(_toy_config(shar_dir, 0, max_steps=1000, max_epochs=2), tmp_path, cpu=True)
    trainer.seen = Counter()
    trainer.train()
    ids = {f"a{i:02d}" for i in range(42)}
    for epoch in (0, 1):
        assert {i for (e, i) in trainer.seen if e == epoch} == ids
    assert set(trainer.seen.values()) == {1}
    assert trainer.epoch == 2 and trainer.step == 2 * len(trainer.sampler)


def test_toy_model_from_shards_resumes_mid_epoch_to_the_same_weights(shar_dir, tmp_path):
    straight = ToyTrainer(_toy_config(shar_dir, 2, max_steps=14), tmp_path / "a", cpu=True)
    straight.train()
    first = ToyTrainer(_toy_config(shar_dir, 2, max_steps=5), tmp_path / "b", cpu=True)
    first.train()  # stops inside epoch 0 (the stream has more batches per epoch) and saves
    assert first.batch_in_epoch == 5 and first.epoch == 0
    resumed = ToyTrainer(_toy_config(shar_dir, 2, max_steps=14), tmp_path / "b", resume=True, cpu=True)
    resumed.train()
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [a[s]["l1"] for s in sorted(a)] == [b[s]["l1"] for s in sorted(b)]
    wa = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "a/checkpoints"), "autoencoder")
    wb = ckpt.load_model_weights(ckpt.latest_checkpoint(tmp_path / "b/checkpoints"), "autoencoder")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ValueError, match="num_workers=2"):
        ToyTrainer(_toy_config(shar_dir, 0, max_steps=20), tmp_path / "b", resume=True, cpu=True)
