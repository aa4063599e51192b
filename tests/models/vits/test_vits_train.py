"""A tiny multi-speaker VITS trains a few steps on real VCTK clips (mini corpus), losses fall, it decodes."""

import csv

import pytest
import soundfile as sf
import torch

from bins.infer import main as infer_main

from models.base.tracker import read_log
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.trainer import VITSTrainer
from processors.data.manifest import ManifestEntry, write_manifest
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate

STEPS = 10


def _manifest(tmp_path, folder="vctk", per_speaker=1):
    entries, counts = [], {}
    with open(MINI_CORPUS / "manifest.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["path"].startswith(folder + "/") or counts.get(row["speaker"], 0) >= per_speaker:
                continue
            counts[row["speaker"]] = counts.get(row["speaker"], 0) + 1
            entries.append(ManifestEntry(id=row["path"].replace("/", "_")[:-4], path=str(MINI_CORPUS / row["path"]),
                                         speaker=row["speaker"], text=row["transcript"],
                                         duration=float(row["duration"]), sample_rate=int(row["sr"])))
    return write_manifest(entries, tmp_path / "train.jsonl")


@pytest.mark.slow
def test_tiny_vits_trains_and_decodes(tmp_path):
    manifest = _manifest(tmp_path)
    raw = load_config(REPO_ROOT / "models/tts/vits/configs/tiny.json5", [
        f"data.train_manifest={manifest}", f"train.max_steps={STEPS}", "train.log_every=1",
        "train.optimizers.default.lr=1e-3", "train.save_every=1000", f"data.valid_manifest={manifest}",
        f"train.valid_every={STEPS}",
    ])
    cfg = validate(raw, VITSExperimentConfig)
    torch.manual_seed(0)
    trainer = VITSTrainer(cfg, tmp_path / "exp", cpu=True)
    trainer.train()
    log = read_log(tmp_path / "exp")
    assert len(log) == STEPS
    mel = [log[s]["loss_mel"] for s in sorted(log)]
    kl = [log[s]["loss_kl"] for s in sorted(log)]
    assert all(torch.isfinite(torch.tensor([log[s]["loss_gen_total"], log[s]["loss_disc"]])).all() for s in log)
    first, last = sum(mel[:3]) / 3, sum(mel[-3:]) / 3
    assert last < first, f"mel loss did not fall: {mel}"
    assert sum(kl[-3:]) < sum(kl[:3]), f"KL did not fall: {kl}"
    # Decode text for every speaker and convert between two speakers.
    gen = trainer.unwrap("generator").eval()
    item = trainer.train_set[0]
    for sid in range(4):
        out = gen.infer(item["text"][None], torch.tensor([len(item["text"])]), sid=torch.tensor([sid]),
                        noise_scale=0.667, noise_scale_w=0.8)
        assert out["wav"].shape[-1] == int(out["lengths"][0]) > 0
        assert bool(torch.isfinite(out["wav"]).all()) and float(out["wav"].abs().max()) <= 1.0
    spec = item["spec"][None]
    vc = gen.voice_conversion(spec, torch.tensor([spec.size(-1)]), torch.tensor([0]), torch.tensor([3]))
    assert vc["wav"].shape[-1] == spec.size(-1) * 256
    valid = read_log(tmp_path / "exp", split="valid")
    assert STEPS in valid and valid[STEPS]["mel_l1"] > 0

    # The generic CLI: TTS with a named speaker, VC between speakers, a bad input listed and skipped.
    out_dir = tmp_path / "out"
    source = MINI_CORPUS / "vctk" / "p225" / "p225_003.wav"
    rc = infer_main(["--ckpt_dir", str(tmp_path / "exp"), "--text", "Ask her to bring these things.",
                     "--text", "   ", "--speaker", "vctk_p226", "--vc_source", str(source),
                     "--vc_src_speaker", "vctk_p225", "--vc_tgt_speaker", "vctk_p227", "--output_dir", str(out_dir)])
    assert rc == 1  # the blank text failed
    tts_wav, sr = sf.read(out_dir / "tts_0000.wav")
    assert sr == 16000 and len(tts_wav) > 0
    vc_wav, _ = sf.read(out_dir / "p225_003_to_vctk_p227.wav")
    assert abs(len(vc_wav) - sf.info(source).frames) < 256
    (bad_list,) = out_dir.glob("bad_items_*.tsv")
    assert "tts_0001" in bad_list.read_text()


@pytest.mark.slow
def test_tiny_single_speaker_vits_trains_on_ljspeech(tmp_path):
    manifest = _manifest(tmp_path, "ljspeech", per_speaker=4)
    raw = load_config(REPO_ROOT / "models/tts/vits/configs/tiny.json5", [
        f"data.train_manifest={manifest}", f"train.max_steps={STEPS}", "train.log_every=1",
        "train.optimizers.default.lr=1e-3", "model.n_speakers=0", "data.speakers=[]", "data.sampling_rate=22050",
    ])
    cfg = validate(raw, VITSExperimentConfig)
    torch.manual_seed(0)
    trainer = VITSTrainer(cfg, tmp_path / "exp", cpu=True)
    assert not hasattr(trainer.unwrap("generator"), "emb_g")
    trainer.train()
    mel = [rec["loss_mel"] for _, rec in sorted(read_log(tmp_path / "exp").items())]
    assert len(mel) == STEPS and sum(mel[-3:]) < sum(mel[:3]), f"mel loss did not fall: {mel}"
    out_dir = tmp_path / "out"
    assert infer_main(["--ckpt_dir", str(tmp_path / "exp"), "--text", "Printing, in the only sense.",
                       "--output_dir", str(out_dir)]) == 0
    wav, sr = sf.read(out_dir / "tts_0000.wav")
    assert sr == 22050 and len(wav) > 0
