"""Failures are visible and nothing is lost: batch summaries and exit codes, distinct outputs, no silent
overwrite, checkpoint integrity and fallback, one-line errors (no traceback) from the CLIs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from bins import infer, train, vc
from models.base import checkpoint as ckpt
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from models.example.toy_autoencoder.trainer import ToyExperimentConfig, ToyTrainer
from tests.base.test_task_pipelines import PROMPT, SOURCE, _save_hsp
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, to_dict, validate

TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"
CLIP = sorted((MINI_CORPUS / "vctk" / "p227").glob("*.wav"))[0]


@pytest.fixture
def toy_ckpt(tmp_path):
    torch.manual_seed(0)
    model = ToyWaveAutoencoder.from_config({"channels": 16, "kernel_size": 16, "stride": 8})
    ckpt.save_checkpoint(tmp_path / "toy" / "checkpoints", 1, models={"autoencoder": model},
                         config=to_dict(ToyExperimentConfig()))
    return tmp_path / "toy"


def _corrupt(path):
    path.write_bytes(b"not audio at all")
    return path


def _last_line(capsys):
    captured = capsys.readouterr()
    return captured.out.strip().splitlines()[-1], captured.err


# ---------------------------------------------------------------------- batch runs
def test_all_bad_inputs_fail_the_run_and_every_run_keeps_its_list(toy_ckpt, tmp_path, capsys):
    bad = [_corrupt(tmp_path / "a.wav"), _corrupt(tmp_path / "b.wav"), tmp_path / "missing.wav"]
    out = tmp_path / "out"
    args = ["--ckpt_dir", str(toy_ckpt), "--inputs", *map(str, bad), "--output_dir", str(out)]
    assert infer.main(args) == 1
    line, _ = _last_line(capsys)
    (first,) = out.glob("bad_items_*.tsv")
    assert line == f"0 written, 3 failed: see {first}"
    rows = [r.split("\t") for r in first.read_text().splitlines()]
    assert rows[0] == ["id", "input", "error"] and [r[0] for r in rows[1:]] == ["a", "b", "missing"]
    assert infer.main(args + ["--allow_failures"]) == 0  # the old behaviour, on request
    lists = sorted(out.glob("bad_items_*.tsv"))
    assert len(lists) == 2 and first in lists and first.read_text().count("\n") == 4  # earlier list kept
    assert not list(out.glob("*.wav"))


def test_same_stem_inputs_get_distinct_outputs_and_nothing_is_overwritten(toy_ckpt, tmp_path, capsys):
    wav, _ = sf.read(CLIP, dtype="float32")
    sf.write(tmp_path / "a.flac", wav[:8000], 16000)
    sf.write(tmp_path / "a.wav", wav[:6000], 16000)
    out = tmp_path / "out"
    args = ["--ckpt_dir", str(toy_ckpt), "--inputs", str(tmp_path / "a.flac"), str(tmp_path / "a.wav"),
            "--output_dir", str(out)]
    assert infer.main(args) == 0
    assert _last_line(capsys)[0] == "2 written, 0 failed"
    assert sf.info(out / "a_flac.wav").frames == 8000 and sf.info(out / "a_wav.wav").frames == 6000
    before = (out / "a_flac.wav").read_bytes()
    sf.write(tmp_path / "a.flac", wav[:4000], 16000)
    assert infer.main(args) == 2  # existing outputs: refused before anything is written
    assert "--overwrite" in capsys.readouterr().err and (out / "a_flac.wav").read_bytes() == before
    assert infer.main(args + ["--overwrite"]) == 0
    assert sf.info(out / "a_flac.wav").frames == 4000
    # the same file twice would be written twice to one name: an error before anything runs
    assert infer.main(["--ckpt_dir", str(toy_ckpt), "--inputs", str(CLIP), str(CLIP), "--output_dir",
                       str(tmp_path / "twice")]) == 2
    assert "both be written" in capsys.readouterr().err and not list((tmp_path / "twice").glob("*.wav"))


def test_outputs_and_checkpoints_honour_the_umask(toy_ckpt, tmp_path):
    old = os.umask(0o022)
    try:
        path = ckpt.save_checkpoint(tmp_path / "c", 3, models={"m": torch.nn.Linear(2, 2)}, config={})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert stat.S_IMODE((path / "m.safetensors").stat().st_mode) & 0o044 == 0o044


# ---------------------------------------------------------------------- checkpoints
def _toy_run(tmp_path, manifest, steps=6, *extra):
    cfg = validate(load_config(TOY_CONFIG, [f"data.train_manifest={manifest}", f"train.max_steps={steps}",
                                            "train.save_every=2", "train.keep_last=10", "train.valid_every=0",
                                            "train.tensorboard=false", *extra]), ToyExperimentConfig)
    return cfg


def test_meta_records_sizes_and_hashes_and_a_damaged_newest_checkpoint_is_skipped(tmp_path, toy_manifest, caplog):
    ToyTrainer(_toy_run(tmp_path, toy_manifest), tmp_path / "exp").train()
    root = tmp_path / "exp" / "checkpoints"
    steps = ckpt.list_checkpoints(root)
    assert [ckpt.read_meta(p)["step"] for p in steps] == [2, 4, 6]
    meta = ckpt.read_meta(steps[-1])
    weights = steps[-1] / "autoencoder.safetensors"
    assert meta["files"]["autoencoder.safetensors"] == {"size": weights.stat().st_size,
                                                        "sha256": ckpt.sha256_of(weights)}
    assert ckpt.verify_checkpoint(steps[-1]) is None
    weights.write_bytes(weights.read_bytes()[:100])  # truncated weights in the newest
    state = steps[1] / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:-1] + b"x")  # same size, other bytes: a corrupt trainer state
    assert "truncated" in ckpt.verify_checkpoint(steps[-1]) and "sha256" in ckpt.verify_checkpoint(steps[1])
    with caplog.at_level("WARNING"):
        assert ckpt.latest_valid_checkpoint(root) == steps[0]
    assert str(weights) in caplog.text and str(state) in caplog.text
    resumed = ToyTrainer(_toy_run(tmp_path, toy_manifest, 8), tmp_path / "exp", resume=True)
    assert resumed.step == 2  # fell back to the newest intact checkpoint
    for path in steps:
        (path / "trainer_state.pt").write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError, match="no intact checkpoint"):
        ckpt.latest_valid_checkpoint(root)


def test_loading_checks_sizes_without_hashing_and_names_a_damaged_step_dir(tmp_path, toy_manifest, monkeypatch):
    """resolve_checkpoint_dir runs on every load: it skips a truncated newest checkpoint and refuses a damaged
    step dir named directly, without hashing every file (only --resume pays for the sha256)."""
    ToyTrainer(_toy_run(tmp_path, toy_manifest), tmp_path / "exp").train()
    steps = ckpt.list_checkpoints(tmp_path / "exp" / "checkpoints")
    weights = steps[-1] / "autoencoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])

    def no_hashing(path):
        raise AssertionError(f"hashed {path} while resolving a checkpoint to load")

    monkeypatch.setattr(ckpt, "sha256_of", no_hashing)
    assert ckpt.resolve_checkpoint_dir(tmp_path / "exp") == steps[-2]
    with pytest.raises(ckpt.CheckpointError, match="damaged checkpoint: .*autoencoder.safetensors.*truncated"):
        ckpt.resolve_checkpoint_dir(steps[-1])


# ---------------------------------------------------------------------- one-line errors
def _cli(module, *args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last
    return last


def test_train_errors_are_one_line(tmp_path, toy_manifest, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(toy_manifest.read_text().splitlines()[0] + "\n{not json\n")
    _one_line_error(_cli("bins.train", "--config", TOY_CONFIG, "--exp_dir", tmp_path / "e1",
                         f"data.train_manifest={bad}"), f"{bad}:2")
    assert train.main(["--config", str(TOY_CONFIG), "--exp_dir", str(tmp_path / "e2")]) == 2
    assert "data.train_manifest is not set" in capsys.readouterr().err


def test_init_from_matching_nothing_is_an_error(tmp_path, toy_manifest, capsys):
    other = tmp_path / "other"
    ckpt.save_checkpoint(other / "checkpoints", 1, models={"autoencoder": torch.nn.Linear(2, 2)},
                         config={"model_type": "vits"})
    rc = train.main(["--config", str(TOY_CONFIG), "--exp_dir", str(tmp_path / "e"), "--init_from", str(other),
                     f"data.train_manifest={toy_manifest}"])
    err = capsys.readouterr().err
    assert rc == 2 and "no weight matches" in err and "'vits'" in err


def test_inference_errors_are_one_line(toy_ckpt, tmp_path, capsys):
    proc = _cli("bins.infer", "--help")
    assert proc.returncode == 0 and "--pipeline" in proc.stdout and "Traceback" not in proc.stderr

    def error_of(main, *args):
        assert main([str(a) for a in args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines and "Traceback" not in "\n".join(lines)
        return lines[-1]

    err = error_of(infer.main, "--model_type", "speechsr", "--ckpt_dir", toy_ckpt, "--inputs", CLIP,
                   "--output_dir", tmp_path / "o")
    assert err.startswith("echelon-infer: ") and "holds a 'toy_autoencoder' checkpoint, not 'speechsr'" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = error_of(infer.main, "--ckpt_dir", toy_ckpt, "--inputs", CLIP, "--output_dir", blocker / "out")
    assert "--output_dir" in err and "is a file" in err and str(blocker / "out") in err
    missing = tmp_path / "release" / "G.pth"  # named before any SSL model is looked for
    err = error_of(vc.main, "--ckpt", missing, "--ssl_model", tmp_path / "no_ssl_here", "--source", SOURCE,
                   "--prompt", PROMPT, "--output_dir", tmp_path / "vc")
    assert str(missing) in err and "no_ssl_here" not in err


def test_vc_setting_errors_are_one_line(tmp_path, capsys):
    _save_hsp(tmp_path / "hsp")
    base = ["--ckpt_dir", str(tmp_path / "hsp"), "--source", str(SOURCE), "--prompt", str(PROMPT),
            "--output_dir", str(tmp_path / "out")]
    assert vc.main(base + ["--denoise_ratio", "0.5"]) == 2
    assert "denoiser" in capsys.readouterr().err.strip().splitlines()[-1]
    assert vc.main(base + ["--random_ssl_dim", "16"]) == 2  # the model was trained on 32-dim features
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "16-dim" in err and "ssl_channels=32" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_unreadable_input_is_listed_not_a_traceback(toy_ckpt, tmp_path, capsys):
    bad = _corrupt(tmp_path / "x.wav")
    assert infer.main(["--ckpt_dir", str(toy_ckpt), "--inputs", str(CLIP), str(bad), "--output_dir",
                       str(tmp_path / "o")]) == 1
    line, err = _last_line(capsys)
    assert line.startswith("1 written, 1 failed: see ") and "Traceback" not in err
    listed = next((tmp_path / "o").glob("bad_items_*.tsv")).read_text()
    assert "x.wav" in listed and "cannot read audio header" in listed
    assert np.isfinite(sf.read(tmp_path / "o" / f"{CLIP.stem}.wav")[0]).all()


def test_evaluate_lists_unreadable_outputs_and_fails(tmp_path, capsys):
    from bins import evaluate

    clips = sorted((MINI_CORPUS / "vctk" / "p225").glob("*.wav"))[:2]
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("".join(json.dumps({"id": c.stem, "path": str(c), "speaker": "p225", "text": "",
                                            "duration": sf.info(c).duration, "sample_rate": 16000}) + "\n"
                                for c in clips))
    gen = tmp_path / "gen"
    gen.mkdir()
    sf.write(gen / f"{clips[0].stem}.wav", sf.read(clips[0], dtype="float32")[0], 16000)
    _corrupt(gen / f"{clips[1].stem}.wav")
    args = ["--system", f"sys={gen}", "--manifest", str(manifest), "--out_dir", str(tmp_path / "eval"),
            "--metrics", "log_mel_l1", "--no_plots"]
    assert evaluate.main(args) == 1
    line, _ = _last_line(capsys)
    (bad_list,) = (tmp_path / "eval").glob("bad_items_*.tsv")
    assert line == f"1 scored, 1 failed: see {bad_list}" and f"sys/{clips[1].stem}" in bad_list.read_text()
    assert evaluate.main(args + ["--allow_failures"]) == 0


def test_an_unexpected_item_error_shows_its_traceback_once(tmp_path, caplog):
    """Bad input is one line in the list; a plain RuntimeError (a bug failing every item) also shows its
    traceback, once per run, so the cause is not hidden behind 'N failed'."""
    from models.base.inference import BaseInference, Item, RunResult
    from processors.audio import AudioError

    result = RunResult()
    with caplog.at_level("WARNING"):
        BaseInference._save(Item("bad", None, "bad.wav"), tmp_path / "bad.wav", AudioError("bad.wav: corrupt"), result)
        assert not caplog.records
        for name in ("a", "b"):
            try:
                raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
            except RuntimeError as err:
                BaseInference._save(Item(name, None, name), tmp_path / f"{name}.wav", err, result)
    assert [r.exc_info is not None for r in caplog.records] == [True]
    assert "item a failed" in caplog.records[0].getMessage()
    assert [row[0] for row in result.failed] == ["bad", "a", "b"]
