"""Configs saved under old key names (``sampling_rate``, ``segment_size``, unread official keys) keep loading."""

import logging

import pytest
import torch

from models.base import checkpoint as ckpt
from models.tts.hierspeechpp.config import HierSpeechExperimentConfig
from models.tts.vits.config import VITSConfig, VITSDataConfig, VITSExperimentConfig, VITSTrainConfig
from models.tts.vits.inference import VITSSynthesizer
from models.tts.vits.model import VITS
from models.vocoders.gan.config import VocoderExperimentConfig
from utils.config import ConfigError, RENAMED_KEYS, migrate_renamed_keys, to_dict, validate


def _tiny_vits_config() -> VITSExperimentConfig:
    model = VITSConfig(inter_channels=8, hidden_channels=8, filter_channels=16, n_layers=1, resblock_kernel_sizes=[3],
                       resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[8, 4], upsample_initial_channel=16,
                       upsample_kernel_sizes=[16, 8], spec_channels=33, segment_frames=6)
    data = VITSDataConfig(sample_rate=16000, filter_length=64, hop_length=32, win_length=64)
    return VITSExperimentConfig(model=model, data=data, train=VITSTrainConfig(segment_samples=6 * 32))


def _with_old_names(cfg: VITSExperimentConfig) -> dict:
    """The config as a checkpoint written before the renames stored it."""
    raw = to_dict(cfg)
    raw["data"]["sampling_rate"] = raw["data"].pop("sample_rate")
    raw["model"]["segment_size"] = raw["model"].pop("segment_frames")
    raw["train"]["segment_size"] = raw["train"].pop("segment_samples")
    raw["model"]["n_layers_q"] = 3
    raw["data"].update(text_cleaners=["english_cleaners2"], max_wav_value=32768.0)
    return raw


def test_every_old_key_moves_to_its_new_name_with_a_note(caplog):
    old = {"model_type": "x", "data": {"sampling_rate": 16000, "segment_size": 4096, "hop_length": 256},
           "model": {"sampling_rate": 24000, "segment_size": 32, "n_layers_q": 3}, "train": {"segment_size": 8192}}
    with caplog.at_level(logging.INFO, logger="utils.config"):
        new = migrate_renamed_keys(old, "ckpt/config.json")
    assert new == {"model_type": "x", "data": {"sample_rate": 16000, "segment_samples": 4096, "hop_length": 256},
                   "model": {"sample_rate": 24000, "segment_frames": 32}, "train": {"segment_samples": 8192}}
    assert old["data"]["sampling_rate"] == 16000  # the input is left alone
    notes = [r.getMessage() for r in caplog.records]
    assert "ckpt/config.json: renamed 'data.sampling_rate' to 'data.sample_rate'" in notes
    assert "ckpt/config.json: dropped 'model.n_layers_q' (never read by the model)" in notes
    assert len(notes) == 6


def test_model_specific_drops_leave_other_models_alone():
    hsp = migrate_renamed_keys({"model_type": "hierspeechpp", "model": {"n_heads": 2, "wav2vec_feature_layer": 7,
                                                                          "hidden_channels": 8}})
    assert hsp["model"] == {"hidden_channels": 8}
    vits = migrate_renamed_keys({"model_type": "vits", "model": {"n_heads": 2}})
    assert vits["model"] == {"n_heads": 2}  # VITS reads n_heads


def test_old_and_new_name_together_fail():
    with pytest.raises(ConfigError, match="'data.sampling_rate' and its new name 'data.sample_rate'"):
        migrate_renamed_keys({"data": {"sampling_rate": 16000, "sample_rate": 22050}}, "c.json")


@pytest.mark.parametrize("schema, section, old", [
    (VITSExperimentConfig, "data", "sampling_rate"), (VITSExperimentConfig, "train", "segment_size"),
    (VITSExperimentConfig, "model", "segment_size"), (VocoderExperimentConfig, "data", "segment_size"),
    (HierSpeechExperimentConfig, "model", "segment_size"),
])  # fmt: skip
def test_a_user_config_with_an_old_key_names_the_new_one(schema, section, old):
    new = RENAMED_KEYS[f"{section}.{old}"]
    with pytest.raises(ConfigError, match=rf"unknown config key '{section}\.{old}' \(renamed to '{section}\.{new}'\)"):
        validate({section: {old: 1}}, schema)


def test_checkpoint_saved_under_old_names_loads_and_stays_intact(tmp_path):
    cfg = _tiny_vits_config()
    torch.manual_seed(0)
    model = VITS.from_config(cfg.model)
    saved = ckpt.save_checkpoint(tmp_path / "checkpoints", 1, models={"generator": model},
                                 config={"model_type": "vits", **_with_old_names(cfg)})
    assert ckpt.verify_checkpoint(saved) is None  # the hash covers the file as written, not the migrated view
    synth = VITSSynthesizer.from_echelon(tmp_path)
    assert synth.sample_rate == 16000 and synth.model.config == cfg.model
    loaded = synth.model.state_dict()  # weight norm is folded for inference: compare the entries it keeps
    shared = [name for name in model.state_dict() if name in loaded]
    assert "enc_p.emb.weight" in shared
    for name in shared:
        assert torch.equal(loaded[name], model.state_dict()[name]), name
