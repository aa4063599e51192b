"""VITS checkpoint format: full-size layouts equal the official key lists; official .pth files load strictly."""

import json
import re

import pytest
import torch

from models.tts.vits.checkpoint import load_official_discriminator, load_official_generator, save_official_checkpoint
from models.tts.vits.config import VITSConfig, VITSExperimentConfig, from_official_config
from models.tts.vits.model import VITS
from modules.discriminators import vits_discriminator
from tests.helpers import REPO_ROOT, fixtures_dir
from utils.config import load_config, validate

CONFIGS = REPO_ROOT / "models" / "tts" / "vits" / "configs"


def _keys_full():
    if not fixtures_dir().is_dir():
        pytest.skip(f"parity fixtures not found at {fixtures_dir()}")
    return json.loads((fixtures_dir() / "vits" / "keys_full.json").read_text())


@pytest.mark.parametrize("name", ["ljs_base", "vctk_base"])
def test_full_size_config_equals_official_layout(name):
    info = _keys_full()[f"{name}_generator"]
    cfg = validate(load_config(CONFIGS / f"{name}.json5"), VITSExperimentConfig)
    with torch.device("meta"):  # shapes only
        model = VITS.from_config(cfg.model)
    layout = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert layout == [(k, v) for k, v in info["keys"].items()]
    assert sum(p.numel() for p in model.parameters()) == info["total_params"]
    by_prefix = {}
    for k, p in model.named_parameters():
        by_prefix[k.split(".")[0]] = by_prefix.get(k.split(".")[0], 0) + p.numel()
    assert by_prefix == info["param_count_by_prefix"]
    # The official config.json block converts to the same model config.
    # Its data/train sizes are those in the stored constructor call ("filter_length//2+1=513, ...").
    spec_channels = int(re.search(r"filter_length//2\+1=(\d+)", info["constructor"])[1])
    segment_frames = int(re.search(r"segment_size//hop_length=(\d+)", info["constructor"])[1])
    hop = 256  # any hop: only segment_size // hop_length reaches the model
    official = {"model": dict(info["config"]), "data": {"filter_length": 2 * (spec_channels - 1), "hop_length": hop,
                                                        "n_speakers": info["config"]["n_speakers"]},
                "train": {"segment_size": segment_frames * hop}}
    official["model"].pop("n_speakers")
    assert from_official_config(official) == cfg.model


def _tiny_config(n_speakers=3):
    return VITSConfig(inter_channels=8, hidden_channels=8, filter_channels=16, n_layers=1, resblock_kernel_sizes=[3],
                      resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[8, 4], upsample_initial_channel=16,
                      upsample_kernel_sizes=[16, 8], n_speakers=n_speakers, gin_channels=4, spec_channels=33)


def test_official_pth_roundtrip_weights_only(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny_config()
    model = VITS.from_config(cfg)
    opt = torch.optim.AdamW(model.parameters(), 2e-4, betas=(0.8, 0.99), eps=1e-9)
    model.dec(torch.randn(1, 8, 4), g=torch.randn(1, 4, 1)).sum().backward()
    opt.step()
    path = tmp_path / "G_100.pth"
    save_official_checkpoint(model, path, iteration=7, optimizer=opt, learning_rate=1.9e-4)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"model", "iteration", "optimizer", "learning_rate"} and raw["iteration"] == 7
    loaded = load_official_generator(path, cfg)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    # Wrong config -> one clear error naming the keys.
    with pytest.raises(ValueError, match="missing keys|shape mismatches"):
        load_official_generator(path, _tiny_config(n_speakers=0))
    # Folded weight norm cannot be written in the official format.
    model.prepare_for_inference()
    with pytest.raises(ValueError, match="folded"):
        save_official_checkpoint(model, tmp_path / "bad.pth")


def test_official_discriminator_roundtrip(tmp_path):
    torch.manual_seed(0)
    disc = vits_discriminator()
    path = tmp_path / "D_100.pth"
    save_official_checkpoint(disc, path, iteration=1)
    loaded = load_official_discriminator(path)
    assert list(loaded.state_dict()) == list(disc.state_dict())
    assert torch.equal(loaded.state_dict()["discriminators.3.conv_post.weight_v"],
                       disc.state_dict()["discriminators.3.conv_post.weight_v"])
