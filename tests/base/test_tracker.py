"""TensorBoard scalars, audio and images are written; bf16 autocast runs through the trainer on CPU."""

import numpy as np
import pytest
import torch

from models.base.tracker import Tracker, read_log


def test_tracker_writes_scalars_audio_and_figures(tmp_path):
    tracker = Tracker(tmp_path, enabled=True, tensorboard=True)
    tracker.log_step(1, {"loss": torch.tensor(0.5), "lr": 1e-3})
    tracker.log_audio("valid/wav", np.sin(np.linspace(0, 100, 1600)), 16000, 1)
    tracker.log_mel("valid/mel", {"target": np.random.rand(80, 20), "generated": np.random.rand(80, 20)}, 1)
    tracker.log_f0("valid/f0", {"target": np.array([0, 120, 125, 0]), "predicted": np.array([0, 118, 0, 0])}, 1)
    tracker.close()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000  # scalars + a wav + two PNG figures
    assert read_log(tmp_path)[1]["loss"] == 0.5


def test_bf16_training_on_cpu(tmp_path, toy_manifest):
    from tests.base.test_trainer import make_cfg
    from models.example.toy_autoencoder.trainer import ToyTrainer

    trainer = ToyTrainer(make_cfg(toy_manifest, "train.max_steps=3", "train.mixed_precision=bf16"), tmp_path)
    last = trainer.train()
    assert trainer.step == 3 and np.isfinite(last["l1"])


def test_fp16_on_cpu_is_refused_clearly(tmp_path, toy_manifest):
    from tests.base.test_trainer import make_cfg
    from models.example.toy_autoencoder.trainer import ToyTrainer

    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        ToyTrainer(make_cfg(toy_manifest, "train.mixed_precision=fp16"), tmp_path, cpu=True)
