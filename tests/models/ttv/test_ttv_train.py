"""A tiny TTV trains a few steps on real clips (real text, real F0, random-SSL features) with falling loss."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from models.base.tracker import read_log
from models.ttv.hierspeechpp_ttv.dataset import MIN_BATCH_FRAMES, TTVDataset, collate_ttv
from models.ttv.hierspeechpp_ttv.config import TTVExperimentConfig
from models.ttv.hierspeechpp_ttv.trainer import TTVTrainer
from processors.data.extract import extract_features
from processors.data.manifest import read_manifest
from processors.features import build_extractor
from processors.features.ssl import SSLFeature
from processors.ssl import build_random_ssl
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate

SSL_DIM = 32


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Manifest of 2 short LJSpeech clips with transcripts + extracted ssl/f0 features."""
    root = tmp_path_factory.mktemp("ttv")
    rows = list(csv.DictReader(open(MINI_CORPUS / "manifest.csv", encoding="utf-8")))
    rows = [r for r in rows if r["path"] in ("ljspeech/LJ001-0002.wav", "ljspeech/LJ001-0004.wav")]
    assert len(rows) == 2, "mini corpus is incomplete"
    manifest = root / "train.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"{i}_{r['speaker']}", "path": str(MINI_CORPUS / r["path"]),
                                            "text": r["transcript"], "speaker": r["speaker"]}) + "\n"
                                for i, r in enumerate(rows)))
    extract_features(read_manifest(manifest), root / "features",
                     [build_extractor("f0", {"method": "dio", "f0_max": 400.0}),
                      SSLFeature(module=build_random_ssl(layer=2, hidden_size=SSL_DIM))])
    return manifest, root / "features"


def test_dataset_and_collate(corpus) -> None:
    manifest, feats = corpus
    ds = TTVDataset(str(manifest), str(feats))
    assert len(ds) == 2
    item = ds[0]
    assert item["ssl"].shape[0] == SSL_DIM and item["mel"].shape == (80, item["ssl"].shape[1])
    assert item["log_f0"].numel() == 4 * item["ssl"].shape[1]
    assert len(item["ids_blank"]) == 2 * len(item["ids"]) + 1 and int(item["ids_blank"][0]) == 0
    batch = collate_ttv([ds[0], ds[1]])
    assert batch["w2v"].shape[2] >= MIN_BATCH_FRAMES and batch["log_f0"].shape[2] == 4 * batch["w2v"].shape[2]
    short = dict(item, ssl=item["ssl"][:, :40], mel=item["mel"][:, :40], log_f0=item["log_f0"][:160])
    assert collate_ttv([short])["w2v"].shape[2] == MIN_BATCH_FRAMES


def test_tiny_ttv_trains_with_falling_loss(corpus, tmp_path) -> None:
    full, feats = corpus
    # one 1.9 s clip keeps the test fast on a busy CPU; the masked w2v loss is checked in the parity test
    manifest = tmp_path / "one.jsonl"
    manifest.write_text(full.read_text().splitlines()[0] + "\n")
    raw = load_config(REPO_ROOT / "models/ttv/hierspeechpp_ttv/configs/ttv_v1.json5", [
        f"data.train_manifest={manifest}", f"data.features_dir={feats}", "model.inter_channels=16",
        "model.hidden_channels=16", f"model.ssl_channels={SSL_DIM}", "train.batch_size=1", "train.max_steps=6",
        "train.optimizers.default.lr=1e-3", "train.log_every=1", "train.save_every=6", "train.tensorboard=false",
        "train.progress_bar=false"])
    cfg = validate(raw, TTVExperimentConfig)
    torch.manual_seed(0)
    TTVTrainer(cfg, tmp_path / "exp", cpu=True).train()
    log = read_log(tmp_path / "exp")
    total = [log[s]["total"] for s in sorted(log)]
    assert len(total) == 6 and all(np.isfinite(total))
    assert np.mean(total[-2:]) < np.mean(total[:2])
    for key in ("w2v_l1", "kl", "f0_l1", "dur_sdp", "ctc"):
        assert np.isfinite(log[6][key])
