"""Standalone GAN mel vocoders (HiFi-GAN and BigVGAN-style AMP) train a few steps on real clips and vocode."""

import csv

import pytest
import soundfile as sf
import torch

from bins.infer import main as infer_main
from models.base.tracker import read_log
from models.vocoders.gan.config import VocoderExperimentConfig
from models.vocoders.gan.model import build_discriminator
from models.vocoders.gan.trainer import GANVocoderTrainer
from processors.data.manifest import ManifestEntry, write_manifest
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate

STEPS = 8


def _manifest(tmp_path):
    entries = []
    with open(MINI_CORPUS / "manifest.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["path"].startswith("vctk/") and row["path"].endswith("_003.wav"):
                entries.append(ManifestEntry(id=row["path"].replace("/", "_")[:-4], path=str(MINI_CORPUS / row["path"]),
                                             speaker=row["speaker"], text="", duration=float(row["duration"]),
                                             sample_rate=int(row["sr"])))
    assert len(entries) == 4
    return write_manifest(entries, tmp_path / "clips.jsonl")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hifigan_tiny", "bigvgan_tiny"])
def test_tiny_vocoder_trains_and_vocodes(tmp_path, name):
    manifest = _manifest(tmp_path)
    raw = load_config(REPO_ROOT / f"models/vocoders/gan/configs/{name}.json5", [
        f"data.train_manifest={manifest}", f"data.valid_manifest={manifest}", f"train.max_steps={STEPS}",
        "train.log_every=1", f"train.valid_every={STEPS}", "train.optimizers.default.lr=2e-3",
    ])
    cfg = validate(raw, VocoderExperimentConfig)
    torch.manual_seed(0)
    trainer = GANVocoderTrainer(cfg, tmp_path / "exp", cpu=True)
    trainer.train()
    log = read_log(tmp_path / "exp")
    mel = [log[s]["loss_mel"] for s in sorted(log)]
    assert len(mel) == STEPS
    assert sum(mel[-3:]) / 3 < sum(mel[:3]) / 3, f"mel loss did not fall: {mel}"
    assert read_log(tmp_path / "exp", split="valid")[STEPS]["mel_l1"] > 0
    source = MINI_CORPUS / "vctk" / "p226" / "p226_005.wav"
    out = tmp_path / "out"
    assert infer_main(["--ckpt_dir", str(tmp_path / "exp"), "--inputs", str(source), str(tmp_path / "missing.wav"),
                       "--output_dir", str(out)]) == 1  # one input failed
    wav, sr = sf.read(out / "p226_005.wav")
    assert sr == 16000 and abs(len(wav) - sf.info(source).frames) < 256
    (bad_list,) = out.glob("bad_items_*.tsv")
    assert "missing" in bad_list.read_text()


def test_discriminator_choices_and_config_errors():
    from modules.discriminators import DiscriminatorR, MultiScaleDiscriminator
    from models.vocoders.gan.config import VocoderDiscriminatorConfig

    disc = build_discriminator(VocoderDiscriminatorConfig(periods=[2], stft_resolutions=[[256, 64, 256]], msd=True))
    kinds = [type(d) for d in disc.discriminators]
    assert kinds[0] is DiscriminatorR and kinds[-1] is MultiScaleDiscriminator
    raw = load_config(REPO_ROOT / "models/vocoders/gan/configs/hifigan_tiny.json5", ["data.hop_length=200"])
    with pytest.raises(Exception, match="hop_length"):
        validate(raw, VocoderExperimentConfig)
