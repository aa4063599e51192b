"""Frozen components: a stage-1 model loaded from another Echelon checkpoint stays in eval mode without
gradients, is never updated, wrapped or saved, and meta.json records where it came from (path, step, sha256)."""

import hashlib

import pytest
import torch

from models.base import checkpoint as ckpt
from models.base.frozen import FrozenComponent, FrozenModules, from_checkpoint
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from models.example.toy_autoencoder.trainer import ToyExperimentConfig, ToyTrainer
from tests.helpers import REPO_ROOT
from utils.config import load_config, validate

TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"


def _cfg(manifest, *overrides):
    return validate(load_config(TOY_CONFIG, [f"data.train_manifest={manifest}", "train.tensorboard=false",
                                             *overrides]), ToyExperimentConfig)  # fmt: skip


class DistilTrainer(ToyTrainer):
    """Student autoencoder trained to reproduce a frozen teacher (a stage-1 model of another run)."""

    teacher_dir = None

    def build_frozen(self):
        self.teacher_modes = []  # teacher.training seen at each step
        return {"teacher": from_checkpoint(self.teacher_dir, "autoencoder",
                                           lambda config: ToyWaveAutoencoder.from_config(config["model"]))}  # fmt: skip

    def train_step(self, batch):
        teacher = self.frozen_modules["teacher"]
        self.teacher_modes.append(teacher.training)
        target = teacher(batch)
        loss = torch.nn.functional.l1_loss(self.models["autoencoder"](batch), target)
        self.optimize("autoencoder", loss)
        return {"l1": loss, "target_requires_grad": float(target.requires_grad)}


def test_frozen_stage1_model_from_a_checkpoint(tmp_path, toy_manifest):
    ToyTrainer(_cfg(toy_manifest, "train.max_steps=2"), tmp_path / "stage1").train()
    stage1 = ckpt.latest_checkpoint(tmp_path / "stage1/checkpoints")
    before = ckpt.load_model_weights(stage1, "autoencoder")

    DistilTrainer.teacher_dir = tmp_path / "stage1"
    trainer = DistilTrainer(_cfg(toy_manifest, "train.max_steps=4", "train.save_every=4"), tmp_path / "stage2")
    assert set(trainer.models) == set(trainer.optimizers) == {"autoencoder"}
    teacher = trainer.frozen_modules["teacher"]
    assert teacher not in trainer.models.values()
    trainer.train()
    assert trainer.teacher_modes == [False] * 4  # never switched to train() by the loop
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # never updated

    saved = ckpt.latest_checkpoint(tmp_path / "stage2/checkpoints")
    meta = ckpt.read_meta(saved)
    assert meta["models"] == ["autoencoder"] and not list(saved.glob("teacher*"))
    sha = hashlib.sha256((stage1 / "autoencoder.safetensors").read_bytes()).hexdigest()
    assert meta["frozen"] == {"teacher": {"kind": "checkpoint", "path": str(stage1.resolve()), "model": "autoencoder",
                                          "step": 2, "sha256": sha}}  # fmt: skip
    assert meta["world_size"] == 1
    # a resumed run rebuilds the teacher from its source, not from the student's checkpoint
    resumed = DistilTrainer(_cfg(toy_manifest, "train.max_steps=4"), tmp_path / "stage2", resume=True)
    assert resumed.step == 4
    assert all(torch.equal(before[k], v) for k, v in resumed.frozen_modules["teacher"].state_dict().items())


def test_mismatched_checkpoint_and_name_clash_fail_clearly(tmp_path, toy_manifest):
    ToyTrainer(_cfg(toy_manifest, "train.max_steps=1"), tmp_path / "stage1").train()
    with pytest.raises(ckpt.CheckpointError, match="does not match"):
        from_checkpoint(tmp_path / "stage1", "autoencoder", lambda config: torch.nn.Linear(2, 2))

    class Clash(ToyTrainer):
        def build_frozen(self):
            return {"autoencoder": torch.nn.Linear(2, 2)}

    with pytest.raises(ValueError, match="both trained"):
        Clash(_cfg(toy_manifest), tmp_path / "clash")


def test_lazy_component_is_built_once_on_first_use():
    calls = []

    def build():
        calls.append(1)
        return torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(2, 2))

    frozen = FrozenModules({"codec": FrozenComponent.lazy(build, {"kind": "hub", "id": "org/codec"}),
                            "front_end": torch.nn.Identity()}, torch.device("cpu"))  # fmt: skip
    assert not calls and not frozen.is_built("codec")
    assert frozen.sources() == {"codec": {"kind": "hub", "id": "org/codec"}, "front_end": {"kind": "code"}}
    module = frozen["codec"]
    assert frozen["codec"] is module and calls == [1]
    assert not module.training and not any(p.requires_grad for p in module.parameters())
    x = torch.ones(3, 2)
    assert torch.equal(module(x), module(x))  # eval mode: dropout off
