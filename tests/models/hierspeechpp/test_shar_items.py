"""HierSpeech++ from Lhotse Shar shards: the trainer's item_from_cut gives the manifest dataset's item (audio,
log-F0, SSL) for the same utterance when shards were converted from the per-item feature folder, whether the
shards store F0 and SSL as TemporalArrays (feature.json records hop and rate) or as plain Arrays (older shards)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet
from lhotse.array import TemporalArray

from models.tts.hierspeechpp.dataset import HierSpeechTrainDataset
from models.tts.hierspeechpp.config import HierSpeechExperimentConfig
from models.tts.hierspeechpp.trainer import HierSpeechTrainer
from processors.data.manifest import read_manifest
from processors.data.shar import SharOptions, stored_features, write_shar
from processors.features.store import FEATURE_INFO, save_feature
from tests.models.hierspeechpp.test_training_data import fake_log_f0, manifest  # noqa: F401 (fixture)
from utils.config import validate


@pytest.mark.parametrize("settings", [{}, {"sample_rate": 16000, "hop_length": 320}], ids=["array", "temporal"])
def test_item_from_cut_equals_the_manifest_item(manifest, tmp_path, settings):  # noqa: F811
    features = tmp_path / "features"
    rng = np.random.default_rng(0)
    for entry in read_manifest(manifest):
        frames = sf.info(entry.path).frames // 320 + 2
        save_feature(features, "f0", entry.id, torch.from_numpy(rng.uniform(0, 5, 4 * frames).astype(np.float32)))
        save_feature(features, "ssl", entry.id, torch.from_numpy(rng.standard_normal((1, 8, frames)).astype(np.float32)))
    for name in ("f0", "ssl"):
        info = {"name": name, "dtype": "float32", **({"settings": settings} if settings else {})}
        (features / name / FEATURE_INFO).write_text(json.dumps(info))
    write_shar(read_manifest(manifest), tmp_path / "shar", stored_features(features, ["f0", "ssl"]),
               SharOptions(shard_size=2, audio_format="wav", audio_rate=16000), features_dir=features)

    cfg = validate({"model_type": "hierspeechpp", "data": {"max_frames": None, "aug": False, "cache": False}},
                   HierSpeechExperimentConfig)
    trainer = types.SimpleNamespace(cfg=cfg, epoch=0)
    trainer._dataset = types.MethodType(HierSpeechTrainer._dataset, trainer)
    dataset = HierSpeechTrainDataset(manifest, max_frames=None, features_dir=features, f0_fn=fake_log_f0,
                                     perturb_audio=False, cache=False)
    expected = {dataset.rows[i].id: dataset[i] for i in range(len(dataset))}
    cuts = list(CutSet.from_shar(in_dir=tmp_path / "shar" / "shar"))
    assert sorted(c.id for c in cuts) == sorted(expected)
    assert all(isinstance(c.ssl, TemporalArray) == bool(settings) for c in cuts)
    for cut in cuts:
        item = HierSpeechTrainer.item_from_cut(trainer, cut)
        assert sorted(item) == sorted(expected[cut.id])
        for key in ("audio", "log_f0", "ssl"):
            np.testing.assert_array_equal(item[key], expected[cut.id][key])
