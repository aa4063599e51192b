"""Tiny VALL-E trained through the shared trainer on real clips of the mini corpus (codes of the tiny random
EnCodec): both losses fall, resume is exact, the saved checkpoint decodes through the registered inference; the
optimizer and warm-up + cosine schedule come from the config and follow the former formula, batches fill a
duration budget, and the codec is a frozen component recorded in meta.json and loaded only for validation
audio."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models.base.tracker import read_log
from models.base.trainer import BaseTrainer
from models.tts.valle.config import ValleExperimentConfig
from models.tts.valle.prepare import SYMBOLS, prepare
from models.tts.valle.trainer import ValleTrainer
from processors.data.manifest import read_manifest, write_manifest
from processors.data.preparers import prepare_mini
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import ConfigError, load_config, validate


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("valle")
    prepare_mini(MINI_CORPUS, root / "manifests", seed=1, valid=0.0, test=0.0)
    train = [e for e in read_manifest(root / "manifests" / "train.jsonl") if e.text and e.duration <= 6.05]
    write_manifest(train, root / "train.jsonl")
    prepare([str(root / "train.jsonl")], root / "feats", "tiny-random")
    return root


def config(root, overrides=()):
    raw = load_config(REPO_ROOT / "models/tts/valle/configs/tiny.json5", [
        f"data.train_manifest={root / 'train.jsonl'}", f"data.features_dir={root / 'feats'}", *overrides,
    ])  # fmt: skip
    raw["data"]["symbols"] = json.loads((root / "feats" / SYMBOLS).read_text())
    return validate(raw, ValleExperimentConfig)


def test_both_losses_fall(features, tmp_path):
    cfg = config(features, ["train.max_steps=25", "train.save_every=0"])
    trainer = ValleTrainer(cfg, tmp_path / "exp", cpu=True)
    history = []
    original = trainer._after_step
    trainer._after_step = lambda values, bar: (history.append(values), original(values, bar))
    trainer.train()
    first = {k: sum(h[k] for h in history[:5]) / 5 for k in ("ar_loss", "nar_loss")}
    last = {k: sum(h[k] for h in history[-5:]) / 5 for k in ("ar_loss", "nar_loss")}
    print("losses first 5 / last 5 steps:", first, last)
    assert last["ar_loss"] < 0.8 * first["ar_loss"] and last["nar_loss"] < 0.85 * first["nar_loss"]


def test_resume_is_exact(features, tmp_path):
    # a schedule of its own length (the interrupted run stops at max_steps 2) that leaves the warm-up at step 2
    schedule = ["train.schedulers.default.warmup_steps=1", "train.schedulers.default.total_steps=6", "train.save_every=2"]
    straight = ValleTrainer(config(features, ["train.max_steps=4", *schedule]), tmp_path / "a", cpu=True)
    straight.train()
    first = ValleTrainer(config(features, ["train.max_steps=2", *schedule]), tmp_path / "b", cpu=True)
    first.train()
    resumed = ValleTrainer(config(features, ["train.max_steps=4", *schedule]), tmp_path / "b", resume=True, cpu=True)
    assert resumed.step == 2
    resumed.train()
    for (name, a), (_, b) in zip(straight.unwrap("valle").state_dict().items(), resumed.unwrap("valle").state_dict().items()):
        assert torch.equal(a, b), name


def test_trained_checkpoint_through_echelon_infer_and_task_api(features, tmp_path):
    from bins.infer import main as infer_main
    from models.tts.valle.inference import ValleTTS

    exp = tmp_path / "exp"
    ValleTrainer(config(features, ["train.max_steps=2", "train.save_every=0", "decoding.max_frames_per_token=1"]), exp, cpu=True).train()
    a, b, c = read_manifest(features / "train.jsonl")[:3]  # texts the tiny symbol table covers
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in [
        {"id": "tts", "text": b.text, "prompt": a.path, "prompt_text": a.text},
        {"id": "cont", "text": c.text, "prompt": c.path, "continuation": True},
        {"id": "bad", "text": b.text, "prompt": str(tmp_path / "missing.wav"), "prompt_text": a.text},
    ]) + "\n")  # fmt: skip
    out = tmp_path / "out"
    assert infer_main(["--ckpt_dir", str(exp), "--jobs", str(jobs), "--output_dir", str(out), "--seed", "3"]) == 1
    assert sorted(p.name for p in out.glob("*.wav")) == ["cont.wav", "tts.wav"]
    (bad_list,) = out.glob("bad_items_*.tsv")  # one list per run; exit 1 because a job failed
    assert bad_list.read_text().splitlines()[1].startswith("bad\t")
    tts = ValleTTS.from_echelon(exp)
    assert tts.capabilities.audio_prompt and tts.capabilities.prompt_text and tts.capabilities.continuation
    run = lambda seed: tts.synthesize([b.text, c.text], [a.path, b.path], [a.text, b.text], seed=seed)
    first, again = run(7), run(7)
    assert [a.sample_rate for a in first] == [24000, 24000]
    assert all(np.array_equal(a.waveform, b.waveform) and a.waveform.size % 320 == 0 for a, b in zip(first, again))
    # task contract: item i of a batch (sampled, not greedy) is the one-item call with seed item_seed(7, i)
    assert tts.decoding.top_k != 1
    alone = tts.synthesize([c.text], [b.path], [b.text], seed=tts.item_seed(7, 1))[0]
    assert np.array_equal(alone.waveform, first[1].waveform)


def former_factor(k: int, warmup: int, decay: int) -> float:
    """The lr factor the VALL-E trainer computed itself before the schedule moved into train.schedulers."""
    if k < warmup:
        return (k + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (k - warmup) / decay)))


def test_configs_keep_amphions_adamw_and_warmup_cosine():
    assert "build_optimizers" not in vars(ValleTrainer) and "build_schedulers" not in vars(ValleTrainer)
    cfg = validate(load_config(REPO_ROOT / "models/tts/valle/configs/valle_libritts.json5"), ValleExperimentConfig)
    view = SimpleNamespace(train_cfg=cfg.train)
    opt = BaseTrainer.build_optimizers(view, {"valle": torch.nn.Linear(2, 2)})["valle"]
    group = opt.param_groups[0]
    assert type(opt) is torch.optim.AdamW and cfg.train.scheduler_interval == "step"
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-4, (0.9, 0.95), 1e-8, 0.01)
    factor = BaseTrainer.build_schedulers(view, {"valle": opt})["valle"].lr_lambdas[0]
    warmup, total = 16000, 800000
    for k in (0, 1, 7999, 15998, 15999):  # warm-up: (k+1)/(w+1), within one step of the former (k+1)/w
        assert factor(k) == pytest.approx((k + 1) / (warmup + 1), rel=1e-12)
        assert abs(factor(k) - former_factor(k, warmup, total - warmup)) <= 1 / warmup
    for k in (16000, 16001, 100000, 408000, 799999, 800000, 900000):  # cosine: the former curve exactly
        assert factor(k) == pytest.approx(former_factor(k, warmup, total - warmup), rel=1e-12, abs=1e-15)


def test_tiny_schedule_and_duration_batches(features, tmp_path):
    trainer = ValleTrainer(config(features, ["train.max_steps=3", "train.save_every=0", "train.log_every=1"]), tmp_path / "exp", cpu=True)
    trainer.train()
    log = read_log(tmp_path / "exp")
    lr = lambda k: 3e-3 * ((k + 1) / 6 if k < 5 else 0.5 * (1 + math.cos(math.pi * (k - 5) / 55)))  # noqa: E731
    assert [log[s]["lr_valle"] for s in (1, 2, 3)] == pytest.approx([lr(1), lr(2), lr(3)], rel=1e-12)
    budget = trainer.train_cfg.batching.max_seconds
    seconds = [len(item["codes"]) / 75.0 for item in trainer.train_set.items]
    batches = list(trainer.sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(seconds)))  # every item once per epoch
    assert len({len(b) for b in batches}) > 1  # the budget, not a fixed size, sets the batch size
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(seconds[i] for i in batch) <= budget


def test_codec_is_frozen_recorded_and_built_only_for_validation_audio(features, tmp_path):
    valid = [f"data.valid_manifest={features / 'train.jsonl'}", "train.valid_every=1", "train.max_steps=1",
             "train.save_every=1", "train.batching.max_seconds=6.5", "decoding.max_frames_per_token=1"]  # fmt: skip
    quiet = ValleTrainer(config(features, [*valid, "train.valid_audio=false"]), tmp_path / "quiet", cpu=True)
    quiet.train()
    assert not quiet.frozen_modules.is_built("codec")
    trainer = ValleTrainer(config(features, [*valid, "train.tensorboard=true"]), tmp_path / "exp", cpu=True)
    logged = []
    trainer.tracker.log_audio = lambda tag, wav, rate, step: logged.append((tag, np.asarray(wav), rate))
    trainer.train()
    assert trainer.frozen_modules.is_built("codec")
    assert not any(p.requires_grad for p in trainer.frozen_modules["codec"].parameters())
    assert [(tag, rate) for tag, _, rate in logged] == [("valid/continuation", 24000), ("valid/target", 24000)]
    first = trainer.valid_set.items[trainer.valid_sampler._all_batches()[0][0]]
    assert logged[1][1].size == len(first["codes"]) * 320 and all(np.isfinite(w).all() for _, w, _ in logged)
    ckpt_dir = tmp_path / "exp" / "checkpoints" / "step_00000001"
    meta = json.loads((ckpt_dir / "meta.json").read_text())
    assert meta["frozen"]["codec"]["kind"] == "random" and meta["frozen"]["codec"]["bandwidth"] == 6.0
    assert sorted(meta["models"]) == ["valle"] and not list(ckpt_dir.glob("codec*"))


def test_pipeline_spec_declares_model_nar_and_codec_with_typed_settings(features, tmp_path):
    from bins.infer import main as infer_main
    from models.base.checkpoint import CheckpointError
    from models.base.pipeline import load_pipeline
    from models.tts.valle.inference import ValleTTS

    runs = {name: tmp_path / name for name in ("ar", "nar", "small")}
    for (name, path), extra in zip(runs.items(), (["train.seed=1"], ["train.seed=2"], ["model.d_model=32"])):
        overrides = ["train.max_steps=1", "train.save_every=0", "decoding.max_frames_per_token=2", *extra]
        ValleTrainer(config(features, overrides), path, cpu=True).train()
    spec = tmp_path / "valle.json5"
    spec.write_text('{pipeline: "valle", components: {model: "ar", nar: "nar"}, infer: {codec: "tiny-random", top_k: 1}}')
    tts = load_pipeline(spec, ["infer.temperature=0.5"])
    ar, nar = (ValleTTS.from_path(runs[name]).model.state_dict() for name in ("ar", "nar"))
    assert any(not torch.equal(ar[k], nar[k]) for k in ar if k.startswith("nar_"))  # two different NARs
    for key, value in tts.model.state_dict().items():
        assert torch.equal(value, (nar if key.startswith("nar_") else ar)[key]), key
    # settings: the checkpoint's decoding section, then the spec's infer section, then the override
    assert (tts.decoding.max_frames_per_token, tts.decoding.top_k, tts.decoding.temperature) == (2, 1, 0.5)
    assert tts.codec.name == "tiny-random"
    with pytest.raises(ConfigError, match="infer.top_kk"):
        load_pipeline(spec, ["infer.top_kk=1"])
    with pytest.raises(ConfigError, match="infer.top_k"):
        load_pipeline(spec, ["infer.top_k=many"])
    with pytest.raises(CheckpointError, match="components.nar .*its model differs"):
        load_pipeline(spec, [f"components.nar={runs['small']}"])
    a, b = read_manifest(features / "train.jsonl")[:2]
    args = ["--pipeline", str(spec), "--text", b.text, "--prompt", a.path, "--prompt_text", a.text]
    assert infer_main([*args, "--output_dir", str(tmp_path / "out"), "--set", "infer.top_p=0.9"]) == 0
    assert [p.name for p in (tmp_path / "out").glob("*.wav")] == ["tts_0000.wav"]
