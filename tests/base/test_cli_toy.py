"""A registered toy model trains and infers through the generic CLIs (the plug-in path of CONTRIBUTING.md)."""

import json

import numpy as np
import soundfile as sf

from bins import infer, train
from models.base import checkpoint as ckpt
from tests.helpers import MINI_CORPUS, REPO_ROOT

TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"


def test_train_then_infer_through_generic_clis(tmp_path, toy_manifest, capsys):
    exp = tmp_path / "exp"
    rc = train.main(["--config", str(TOY_CONFIG), "--exp_dir", str(exp), f"data.train_manifest={toy_manifest}",
                     f"data.valid_manifest={toy_manifest}", "train.max_steps=30", "train.tensorboard=false"])  # fmt: skip
    assert rc == 0
    log = [json.loads(l) for l in (exp / "train_log.jsonl").read_text().splitlines()]
    train_l1 = [r["l1"] for r in log if r["split"] == "train"]
    assert np.mean(train_l1[-5:]) < 0.8 * np.mean(train_l1[:5]), "the toy model did not learn"
    assert any(r["split"] == "valid" for r in log)
    saved = ckpt.read_config(ckpt.resolve_checkpoint_dir(exp))
    assert saved["train"]["max_steps"] == 30 and saved["data"]["train_manifest"] == str(toy_manifest)

    clip = sorted((MINI_CORPUS / "vctk" / "p227").glob("*.wav"))[0]
    bad = tmp_path / "empty.wav"
    sf.write(bad, np.zeros(0, dtype=np.float32), 16000)
    out = tmp_path / "out"
    rc = infer.main(["--ckpt_dir", str(exp), "--inputs", str(clip), str(bad), "--output_dir", str(out)])
    assert rc == 1  # one input failed
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("1 written, 1 failed: see ")
    wav, sr = sf.read(out / f"{clip.stem}.wav")
    ref, _ = sf.read(clip)
    assert sr == 16000 and len(wav) == len(ref)
    (bad_list,) = out.glob("bad_items_*.tsv")
    assert "empty.wav" in bad_list.read_text()


def test_train_cli_rejects_misspelled_key(tmp_path, capsys):
    rc = train.main(["--config", str(TOY_CONFIG), "--exp_dir", str(tmp_path), "train.bacth_size=3"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "train.bacth_size" in err and "train.batch_size" in err


def test_infer_cli_unknown_checkpoint(tmp_path, capsys):
    assert infer.main(["--ckpt_dir", str(tmp_path)]) == 2
    assert "no Echelon checkpoint" in capsys.readouterr().err
