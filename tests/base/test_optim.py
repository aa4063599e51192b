"""Optimizers and schedulers by name: the shipped configs keep their former hyper-parameters and schedules, and
every schedule follows its formula (computed here independently), also across a resume."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from models.base import optim
from models.base.trainer import BaseTrainer
from models.base.tracker import read_log
from models.example.toy_autoencoder.trainer import ToyExperimentConfig, ToyTrainer
from tests.helpers import REPO_ROOT
from utils.config import ConfigError, load_config, validate
from utils.registry import get

GAN = ("generator", "discriminator")
VITS_FAMILY = dict(lr=2e-4, betas=(0.8, 0.99), eps=1e-9, weight_decay=0.01, gamma=0.999)
# Values the trainers hard-coded before the optimizers moved into the configs (AdamW everywhere; torch's
# AdamW weight decay 0.01 unless set): config -> (trainer, model names, expected hyper-parameters).
FORMER = {
    "models/example/toy_autoencoder/configs/toy.json5":
        ("toy_autoencoder", ("autoencoder",), dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, gamma=0.9)),
    "models/tts/vits/configs/ljs_base.json5": ("vits", GAN, VITS_FAMILY),
    "models/tts/vits/configs/vctk_base.json5": ("vits", GAN, VITS_FAMILY),
    "models/tts/vits/configs/tiny.json5": ("vits", GAN, VITS_FAMILY),
    "egs/tts/vits/conf/vits_tiny.json5": ("vits", GAN, VITS_FAMILY),
    "models/vocoders/gan/configs/hifigan_v1.json5": ("gan_vocoder", GAN, VITS_FAMILY),
    "models/vocoders/gan/configs/hifigan_tiny.json5": ("gan_vocoder", GAN, VITS_FAMILY),
    "models/vocoders/gan/configs/bigvgan_base.json5": ("gan_vocoder", GAN, VITS_FAMILY),
    "models/vocoders/gan/configs/bigvgan_tiny.json5": ("gan_vocoder", GAN, VITS_FAMILY),
    "models/sr/speechsr/configs/speechsr24k.json5": ("speechsr", GAN, {**VITS_FAMILY, "lr": 1e-4}),
    "models/sr/speechsr/configs/speechsr48k.json5": ("speechsr", GAN, {**VITS_FAMILY, "lr": 1e-4, "gamma": 0.995}),
    "egs/tts/hierspeechpp/conf/speechsr_tiny.json5": ("speechsr", GAN, {**VITS_FAMILY, "lr": 1e-4, "gamma": 0.995}),
    "models/tts/hierspeechpp/configs/train_eng_kor.json5": ("hierspeechpp", GAN, {**VITS_FAMILY, "lr": 1e-4}),
    "models/tts/hierspeechpp/configs/train_tiny.json5": ("hierspeechpp", GAN, VITS_FAMILY),
    "egs/tts/hierspeechpp/conf/synth_tiny.json5": ("hierspeechpp", GAN, VITS_FAMILY),
    "models/ttv/hierspeechpp_ttv/configs/ttv_v1.json5": ("hierspeechpp_ttv", ("ttv",), VITS_FAMILY),
    "egs/tts/hierspeechpp/conf/ttv_tiny.json5": ("hierspeechpp_ttv", ("ttv",), VITS_FAMILY),
}


def _trainer_view(trainer_cls, cfg):
    """What the base build_optimizers/build_schedulers read from a trainer (no models, data or accelerator)."""
    return SimpleNamespace(train_cfg=cfg.train)


@pytest.mark.parametrize("config", sorted(FORMER))
def test_shipped_configs_keep_their_optimizers_and_schedules(config):
    model_type, names, want = FORMER[config]
    trainer_cls = get("trainer", model_type)
    # the trainer itself no longer hard-codes them: the config-driven base methods are used
    assert "build_optimizers" not in vars(trainer_cls) and "build_schedulers" not in vars(trainer_cls)
    cfg = validate(load_config(REPO_ROOT / config), trainer_cls.config_class)
    assert cfg.train.scheduler_interval == ("step" if model_type == "toy_autoencoder" else "epoch")
    models = {name: nn.Linear(3, 2) for name in names}
    view = _trainer_view(trainer_cls, cfg)
    opts = BaseTrainer.build_optimizers(view, models)
    scheds = BaseTrainer.build_schedulers(view, opts)
    assert sorted(opts) == sorted(scheds) == sorted(names)
    for name in names:
        opt = opts[name]
        assert type(opt) is torch.optim.AdamW
        group = opt.param_groups[0]
        assert group["betas"] == want["betas"] and group["eps"] == want["eps"]
        assert group["weight_decay"] == want["weight_decay"]
        lrs = []
        for _ in range(5):
            lrs.append(group["lr"])
            opt.step()
            scheds[name].step()
        assert lrs == pytest.approx([want["lr"] * want["gamma"] ** k for k in range(5)], rel=1e-12, abs=0)


def _lrs(cfg: optim.SchedulerConfig, steps: int, lr: float = 0.1, total=None):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = optim.build_scheduler(opt, cfg, total)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_schedules_follow_their_formulas():
    w = 4
    constant = _lrs(optim.SchedulerConfig(type="constant", warmup_steps=w), 8)
    assert constant == pytest.approx([0.1 * 1 / 5, 0.1 * 2 / 5, 0.1 * 3 / 5, 0.1 * 4 / 5, 0.1, 0.1, 0.1, 0.1])
    noam = _lrs(optim.SchedulerConfig(type="inverse_sqrt", warmup_steps=w), 10)
    assert noam[:4] == pytest.approx([0.02, 0.04, 0.06, 0.08]) and noam[4] == pytest.approx(0.1)
    assert noam[8] == pytest.approx(0.1 * math.sqrt(5 / 9))  # k = 8: 1/sqrt decay after the peak
    cos = _lrs(optim.SchedulerConfig(type="cosine", warmup_steps=2, min_lr=0.01), 12, total=10)
    expected = [0.1 / 3, 0.2 / 3] + [0.01 + 0.09 * (1 + math.cos(math.pi * (k - 2) / 8)) / 2 for k in range(2, 10)]
    assert cos[:10] == pytest.approx(expected) and cos[10:] == pytest.approx([0.01, 0.01])
    with pytest.raises(ValueError, match="total_steps"):
        _lrs(optim.SchedulerConfig(type="cosine", warmup_steps=2), 1, total=None)


def test_noam_is_the_glow_tts_rate():
    """glow-tts commons.Adam: step_num starts at 1 and the rate is recomputed after every optimizer step."""
    d, w, scale = 192, 5, 1.0
    noam = _lrs(optim.SchedulerConfig(type="noam", warmup_steps=w, d_model=d), 12, lr=scale)
    expected = [scale * d**-0.5 * min(n**-0.5, n * w**-1.5) for n in range(1, 13)]
    assert noam == pytest.approx(expected, rel=1e-12)
    assert max(range(12), key=noam.__getitem__) == w - 1  # the peak: n = warmup
    # the same rate as inverse_sqrt with one warm-up step less and the peak as lr
    same = _lrs(optim.SchedulerConfig(type="inverse_sqrt", warmup_steps=w - 1), 12, lr=scale * d**-0.5 * w**-0.5)
    assert same == pytest.approx(noam, rel=1e-12)
    with pytest.raises(ValueError, match="d_model"):
        optim.SchedulerConfig(type="noam", warmup_steps=4)


def test_geometric_schedule_follows_its_formula():
    """Warm-up, flat until decay_start, log-linear down to min_lr at total_steps, flat afterwards."""
    geo = _lrs(optim.SchedulerConfig(type="geometric", warmup_steps=1, decay_start=3, total_steps=7, min_lr=0.001), 10)
    expected = [0.05, 0.1, 0.1] + [0.1 * 0.01 ** ((k - 3) / 4) for k in range(3, 8)] + [0.001, 0.001]
    assert geo == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="min_lr > 0"):
        optim.SchedulerConfig(type="geometric", total_steps=10)
    with pytest.raises(ValueError, match="decay_start"):
        _lrs(optim.SchedulerConfig(type="geometric", decay_start=10, min_lr=0.01), 1, total=10)

def test_optimizer_types_and_entries():
    models = {"generator": nn.Linear(2, 2), "discriminator": nn.Linear(2, 2)}
    table = {"default": optim.OptimizerConfig(type="adam", lr=1e-3),
             "discriminator": optim.OptimizerConfig(type="sgd", lr=0.5, momentum=0.9, nesterov=True)}
    opts = optim.build_optimizers(models, table)
    assert type(opts["generator"]) is torch.optim.Adam and opts["generator"].param_groups[0]["weight_decay"] == 0
    d = opts["discriminator"].param_groups[0]
    assert type(opts["discriminator"]) is torch.optim.SGD and (d["lr"], d["momentum"], d["nesterov"]) == (0.5, 0.9, True)
    with pytest.raises(ValueError, match="genrator"):
        optim.build_optimizers(models, {"genrator": optim.OptimizerConfig()})
    with pytest.raises(ValueError, match="no entry for model"):
        optim.build_optimizers(models, {"generator": optim.OptimizerConfig()})
    with pytest.raises(ConfigError, match="train.optimizers.default.type"):
        validate(load_config(REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5",
                             ["train.optimizers.default.type=lamb"]), ToyExperimentConfig)  # fmt: skip


def test_cosine_warmup_resumes_exactly(tmp_path, toy_manifest):
    """LambdaLR state goes through the weights_only checkpoint; the lr sequence equals the formula."""
    over = [f"data.train_manifest={toy_manifest}", "train.tensorboard=false", "train.scheduler_interval=step",
            "train.schedulers={default: {type: 'cosine', warmup_steps: 2, total_steps: 8}}"]  # fmt: skip
    cfg = lambda *extra: validate(load_config(REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5",  # noqa: E731
                                              [*over, *extra]), ToyExperimentConfig)  # fmt: skip
    ToyTrainer(cfg("train.max_steps=6", "train.save_every=0"), tmp_path / "a").train()
    ToyTrainer(cfg("train.max_steps=3", "train.save_every=3"), tmp_path / "b").train()
    ToyTrainer(cfg("train.max_steps=6", "train.save_every=0"), tmp_path / "b", resume=True).train()
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    # logged after the step's scheduler update: k = step
    factor = [(k + 1) / 3 if k < 2 else (1 + math.cos(math.pi * (k - 2) / 6)) / 2 for k in range(1, 7)]
    assert [a[s]["lr_autoencoder"] for s in range(1, 7)] == pytest.approx([2e-3 * f for f in factor], rel=1e-12)
    assert [b[s]["lr_autoencoder"] for s in range(1, 7)] == [a[s]["lr_autoencoder"] for s in range(1, 7)]
    assert [b[s]["l1"] for s in range(1, 7)] == [a[s]["l1"] for s in range(1, 7)]
