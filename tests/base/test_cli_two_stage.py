"""The two-stage teaching example of CONTRIBUTING.md through the generic CLIs.

Stage 1 (toy autoencoder) trains; stage 2 (toy_latent_sr) trains on its codes with stage 1 frozen, duration
batches and an optimizer/schedule from its config; a two-checkpoint pipeline spec then runs in echelon-infer.
"""

import json
import math

import json5
import numpy as np
import soundfile as sf
from safetensors import safe_open

from bins import infer, train
from models.base import checkpoint as ckpt
from tests.helpers import MINI_CORPUS, REPO_ROOT

STAGE1_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"
STAGE2_CONFIG = REPO_ROOT / "models/example/toy_latent_sr/configs/toy_latent_sr.json5"


def write_manifest(path, clips):
    """JSONL manifest with each clip's real duration (duration batching reads it)."""
    with open(path, "w") as fh:
        for clip in clips:
            info = sf.info(clip)
            fh.write(json.dumps({"id": clip.stem, "path": str(clip), "speaker": clip.parent.name, "text": "",
                                 "duration": info.duration, "sample_rate": info.samplerate}) + "\n")  # fmt: skip
    return path


def read_log(exp):
    return [json.loads(line) for line in (exp / "train_log.jsonl").read_text().splitlines()]


def cosine_lr(k, lr, min_lr, warmup, total):
    """The cosine-with-warm-up schedule of models/base/optim.py's docstring, after k scheduler steps."""
    if k < warmup:
        return lr * (k + 1) / (warmup + 1)
    p = min(max((k - warmup) / (total - warmup), 0.0), 1.0)
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * p)) / 2


def test_two_stage_model_trains_and_infers_through_generic_clis(tmp_path, capsys):
    clips = sorted((MINI_CORPUS / "vctk").glob("p22[56]/*.wav"))[:8]
    assert len(clips) == 8, "mini corpus is incomplete"
    manifest = write_manifest(tmp_path / "train.jsonl", clips)
    held_out = write_manifest(tmp_path / "valid.jsonl", sorted((MINI_CORPUS / "vctk").glob("p227/*.wav"))[:3])
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    data = [f"data.train_manifest={manifest}", f"data.valid_manifest={held_out}", "train.tensorboard=false"]
    assert train.main(["--config", str(STAGE1_CONFIG), "--exp_dir", str(stage1), *data, "train.max_steps=20"]) == 0

    max_seconds, steps = 20.0, 16
    rc = train.main(["--config", str(STAGE2_CONFIG), "--exp_dir", str(stage2), *data, f"model.stage1_checkpoint={stage1}",
                     f"train.max_steps={steps}", f"train.batching.max_seconds={max_seconds}", "train.valid_every=8"])  # fmt: skip
    assert rc == 0
    log = read_log(stage2)
    train_rows = [r for r in log if r["split"] == "train"]
    assert len(train_rows) == steps

    # duration batching: padded seconds within the budget, and the item count follows the durations
    assert all(r["padded_seconds"] <= max_seconds for r in train_rows)
    assert len({r["items"] for r in train_rows}) > 1, "batches are not formed by duration"

    # the optimizer and schedule of the config: Adam with cosine warm-up, one scheduler step per optimizer step
    cfg = json5.loads(STAGE2_CONFIG.read_text())["train"]
    opt, sched = cfg["optimizers"]["refiner"], cfg["schedulers"]["refiner"]
    expected = [cosine_lr(r["step"], opt["lr"], sched["min_lr"], sched["warmup_steps"], steps) for r in train_rows]
    np.testing.assert_allclose([r["lr_refiner"] for r in train_rows], expected, rtol=1e-6)

    # the refiner learns: on held-out speakers, the frozen decoder turns its codes into audio closer to the original
    valid = [r for r in log if r["split"] == "valid"]
    assert valid[-1]["wave_l1"] < 0.8 * valid[-1]["wave_l1_unrefined"]

    # the frozen stage 1: recorded with its provenance, not saved in the stage-2 checkpoint
    stage1_dir = ckpt.resolve_checkpoint_dir(stage1)
    stage2_dir = ckpt.resolve_checkpoint_dir(stage2)
    meta = ckpt.read_meta(stage2_dir)
    assert meta["world_size"] == 1 and meta["models"] == ["refiner"]
    source = meta["frozen"]["stage1"]
    assert source["kind"] == "checkpoint" and source["path"] == str(stage1_dir.resolve())
    assert source["sha256"] == ckpt.sha256_of(stage1_dir / "autoencoder.safetensors")
    assert sorted(p.name for p in stage2_dir.glob("*.safetensors")) == ["refiner.safetensors"]
    with safe_open(str(stage2_dir / "refiner.safetensors"), "pt") as fh:
        assert all(key.startswith("net.") for key in fh.keys())
    assert not list(stage2_dir.glob("optimizer_stage1*"))

    # two-checkpoint inference through a pipeline spec; one bad input is listed, the rest is written
    spec = tmp_path / "toy_sr.json5"
    spec.write_text(json.dumps({"pipeline": "toy_latent_sr", "components": {"stage1": "stage1", "refiner": "stage2"},
                                "infer": {"input_rate": 8000}}))  # fmt: skip
    low = tmp_path / "low_8k.wav"
    full, rate = sf.read(clips[0], dtype="float32")
    sf.write(low, full[::2], rate // 2)  # a crude 8 kHz copy
    bad = tmp_path / "empty.wav"
    sf.write(bad, np.zeros(0, dtype=np.float32), 8000)
    out = tmp_path / "out"
    capsys.readouterr()
    rc = infer.main(["--pipeline", str(spec), "--inputs", str(low), str(bad), "--output_dir", str(out)])
    assert rc == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("1 written, 1 failed: see ")
    wav, sr = sf.read(out / "low_8k.wav")
    assert sr == 16000 and abs(len(wav) - len(full)) <= 2 and np.abs(wav).max() > 0.01
    (bad_list,) = out.glob("bad_items_*.tsv")
    assert "empty.wav" in bad_list.read_text()
    assert infer.main(["--pipeline", str(spec), "--inputs", str(low), "--output_dir", str(out / "ok")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 written, 0 failed"


def test_pipeline_rejects_a_stage1_it_was_not_trained_with(tmp_path, capsys):
    """The spec's stage 1 must be the checkpoint the refiner was trained on (sha256 from meta.json)."""
    clips = sorted((MINI_CORPUS / "vctk").glob("p225/*.wav"))[:2]
    manifest = write_manifest(tmp_path / "train.jsonl", clips)
    data = [f"data.train_manifest={manifest}", "train.tensorboard=false", "train.valid_every=0"]
    for name, seed in (("stage1", 1), ("other", 2)):
        assert train.main(["--config", str(STAGE1_CONFIG), "--exp_dir", str(tmp_path / name), *data,
                           "train.max_steps=1", f"train.seed={seed}"]) == 0  # fmt: skip
    assert train.main(["--config", str(STAGE2_CONFIG), "--exp_dir", str(tmp_path / "stage2"), *data,
                       f"model.stage1_checkpoint={tmp_path / 'stage1'}", "train.max_steps=1",
                       "train.schedulers.refiner.type=constant"]) == 0  # fmt: skip
    capsys.readouterr()
    rc = infer.main(["--pipeline", str(tmp_path / "stage2"), "--component", f"stage1={tmp_path / 'other'}",
                     "--inputs", str(clips[0]), "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "components.stage1" in err and "sha256" in err
