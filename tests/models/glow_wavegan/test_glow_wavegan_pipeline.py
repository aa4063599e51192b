"""Glow-WaveGAN two-stage pipeline on real clips: stage-1 latents -> stage-2 training (likelihood falls, exact
resume) -> two-checkpoint inference (audio of the predicted length, seeds, CLI) and the latent contract."""

import csv
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from bins.infer import main as infer_main
from models.base import checkpoint as ckpt
from models.base.tracker import read_log
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig, WaveGANExperimentConfig
from models.base.pipeline import load_pipeline
from bins.extract_features import main as extract_main
from models.tts.glow_wavegan.latents import LATENT_FEATURE, LatentError, LatentStore
from models.tts.glow_wavegan.trainer import GlowWaveGANTrainer
from models.tts.glow_wavegan.trainer_vae import WaveGANTrainer
from processors.audio import load_audio
from processors.data.manifest import ManifestEntry, write_manifest
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, validate

CONFIGS = REPO_ROOT / "models/tts/glow_wavegan/configs"
STEPS = 24


@pytest.fixture(scope="module")
def one_thread():
    """Module fixtures run before the suite's per-test one-thread setting (tests/conftest.py): set it here too,
    or on a loaded machine the extra intra-op threads make the training steps many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("ECHELON_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, one_thread):
    """A briefly trained tiny stage 1 and the latents of the LJSpeech clips of the mini corpus."""
    root = tmp_path_factory.mktemp("gwg")
    entries = []
    with open(MINI_CORPUS / "manifest.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["path"].startswith("ljspeech/"):
                entries.append(ManifestEntry(id=row["path"][len("ljspeech/"):-4], path=str(MINI_CORPUS / row["path"]),
                                             speaker="ljspeech", text=row["transcript"],
                                             duration=float(row["duration"]), sample_rate=int(row["sr"])))
    manifest = write_manifest(entries, root / "train.jsonl")
    raw = load_config(CONFIGS / "vae_tiny.json5", [f"data.train_manifest={manifest}", "train.max_steps=2",
                                                   "train.adversarial_start_step=100", "train.batch_size=2"])
    WaveGANTrainer(validate(raw, WaveGANExperimentConfig), root / "stage1", cpu=True).train()
    assert extract_main(_extract_args(manifest, root / "features", root / "stage1")) == 0
    assert len(list((root / "features" / LATENT_FEATURE).glob("*.pt"))) == len(entries) == 6
    return {"root": root, "manifest": manifest}


def _extract_args(manifest, out_dir, stage1_ckpt):
    return ["--manifest", str(manifest), "--out_dir", str(out_dir), "--features", LATENT_FEATURE,
            "--set", f"{LATENT_FEATURE}.stage1_ckpt={stage1_ckpt}"]


def _stage2_cfg(stage1, *overrides):
    root = stage1["root"]
    raw = load_config(CONFIGS / "tiny.json5", [
        f"data.train_manifest={stage1['manifest']}", f"data.features_dir={root / 'features'}",
        f"data.stage1_ckpt={root / 'stage1'}", "train.log_every=1", *overrides])
    return validate(raw, GlowWaveGANExperimentConfig)


@pytest.fixture(scope="module")
def stage2(stage1):
    exp = stage1["root"] / "stage2"
    torch.manual_seed(0)
    GlowWaveGANTrainer(_stage2_cfg(stage1, f"train.max_steps={STEPS}", f"train.save_every={STEPS}"), exp, cpu=True).train()
    return exp


def test_latents_are_frame_exact_posteriors(stage1):
    store = LatentStore.open(stage1["root"] / "features", expected_channels=8, stage1_ckpt=str(stage1["root"] / "stage1"))
    mean, log_std = store.load("LJ001-0002")
    samples = len(load_audio(MINI_CORPUS / "ljspeech" / "LJ001-0002.wav", 16000))
    assert mean.shape == log_std.shape == (8, samples // 256)
    assert torch.isfinite(mean).all() and torch.isfinite(log_std).all()


def test_stage2_likelihood_falls_on_stage1_latents(stage2):
    log = read_log(stage2)
    mle = [log[s]["loss_mle"] for s in sorted(log)]
    dur = [log[s]["loss_dur"] for s in sorted(log)]
    assert len(mle) == STEPS
    assert np.mean(mle[-4:]) < np.mean(mle[:4]) - 0.02, f"MLE did not fall: {mle}"
    assert np.mean(dur[-4:]) < np.mean(dur[:4]), f"duration loss did not fall: {dur}"


def test_stage2_resume_is_exact(stage1, tmp_path):
    GlowWaveGANTrainer(_stage2_cfg(stage1, "train.max_steps=4", "train.save_every=0"), tmp_path / "a", cpu=True).train()
    GlowWaveGANTrainer(_stage2_cfg(stage1, "train.max_steps=2", "train.save_every=2"), tmp_path / "b", cpu=True).train()
    resumed = GlowWaveGANTrainer(_stage2_cfg(stage1, "train.max_steps=4", "train.save_every=0"), tmp_path / "b",
                                 resume=True, cpu=True)
    assert resumed.step == 2
    resumed.train()
    la, lb = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [la[s]["loss"] for s in range(1, 5)] == [lb[s]["loss"] for s in range(1, 5)]
    wa = load_file(str(ckpt.latest_checkpoint(tmp_path / "a" / "checkpoints") / "acoustic.safetensors"))
    wb = load_file(str(ckpt.latest_checkpoint(tmp_path / "b" / "checkpoints") / "acoustic.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_stage2_records_the_frozen_stage1_and_batches_by_duration(stage1, tmp_path):
    """meta.json names the stage-1 checkpoint the latents came from (dir, step, weights' sha256); duration
    batching packs the manifest's seconds; building the frozen stage 1 leaves the model init untouched."""
    budget = 20.0
    cfg = _stage2_cfg(stage1, "train.max_steps=2", "train.save_every=2",
                      f"train.batching={{type: 'duration', max_seconds: {budget}, buckets: 2}}")
    trainer = GlowWaveGANTrainer(cfg, tmp_path / "exp", cpu=True)
    seconds = trainer.train_set.durations()
    batches = list(trainer.sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(seconds)))
    assert all(len(b) * max(seconds[i] for i in b) <= budget or len(b) == 1 for b in batches)
    assert len(batches) < len(seconds)  # some batches hold several clips
    torch.manual_seed(cfg.train.seed)  # what the trainer seeds before building its frozen and trained models
    plain = GlowTTS.from_config(cfg.model).state_dict()
    assert all(torch.equal(v, trainer.unwrap("acoustic").state_dict()[k]) for k, v in plain.items())
    trainer.train()
    stage1_dir = ckpt.latest_checkpoint(stage1["root"] / "stage1" / "checkpoints")
    source = ckpt.read_meta(ckpt.latest_checkpoint(tmp_path / "exp" / "checkpoints"))["frozen"]["stage1"]
    digest = hashlib.sha256((stage1_dir / "generator.safetensors").read_bytes()).hexdigest()
    assert source == {"kind": "checkpoint", "path": str(stage1_dir.resolve()), "model": "generator",
                      "step": 2, "sha256": digest}


def _pipeline(stage1, stage2, *overrides):
    spec = {"pipeline": "glow_wavegan", "components": {"acoustic": str(stage2), "decoder": str(stage1["root"] / "stage1")}}
    return load_pipeline(spec, overrides)


def test_inference_gives_audio_of_the_predicted_length(stage1, stage2):
    tts = _pipeline(stage1, stage2)
    text = "Printing, in the only sense with which we are concerned."
    for length_scale in (1.0, 1.7):
        ids = torch.tensor([tts.frontend(text)["ids_blank"]])
        with torch.no_grad():
            _, _, logw, _ = tts.acoustic.encoder(ids, torch.tensor([ids.size(1)]))
        total = int(torch.ceil(torch.exp(logw) * length_scale).sum())
        expected = max(2, total // 2 * 2)  # trimmed to whole squeeze groups (n_sqz = 2)
        tts.settings.length_scale = length_scale
        wav, frames = tts.synthesize_one(text)
        assert frames == expected and wav.shape == (frames * tts.hop_length,)
        assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0
    texts = [text, "in being comparatively modern."]
    first, again = tts.synthesize(texts, seed=3), tts.synthesize(texts, seed=3)
    other = tts.synthesize([text], seed=4)[0]
    assert first[0].sample_rate == 16000 and np.array_equal(first[0].waveform, again[0].waveform)
    assert not np.array_equal(first[0].waveform, other.waveform)
    # item k of a call is the one-item call with item_seed(seed, k) (what the batch runner relies on)
    alone = tts.synthesize([texts[1]], seed=tts.item_seed(3, 1))[0]
    assert np.array_equal(first[1].waveform, alone.waveform)
    tts.settings.noise_scale = 0.0
    assert np.array_equal(tts.synthesize([text], seed=3)[0].waveform, tts.synthesize([text], seed=4)[0].waveform)
    with pytest.raises(ValueError, match="prompt"):
        tts.synthesize([text], prompts=["x.wav"])


def test_cli_writes_wavs_lists_bad_texts_and_takes_a_spec(stage1, stage2, tmp_path):
    out = tmp_path / "out"
    args = ["--ckpt_dir", str(stage2), "--component", f"decoder={stage1['root'] / 'stage1'}",
            "--text", "in being comparatively modern.", "   ", "--output_dir", str(out)]
    assert infer_main(args) == 1  # one text failed: listed, the other written
    wav, sr = sf.read(out / "tts_0000.wav")
    assert sr == 16000 and len(wav) > 0 and len(wav) % 256 == 0
    (bad_list,) = out.glob("bad_items_*.tsv")
    assert "tts_0001" in bad_list.read_text() and not (out / "tts_0001.wav").exists()
    assert infer_main([*args, "--allow_failures"]) == 2  # outputs exist: refused without --overwrite
    assert infer_main([*args, "--allow_failures", "--overwrite"]) == 0
    # one spec declares both checkpoints (paths relative to it) and the settings
    spec = tmp_path / "gwg.json5"
    spec.write_text('{pipeline: "glow_wavegan", components: {acoustic: "%s", decoder: "%s"}, infer: {noise_scale: 0}}'
                    % (os.path.relpath(stage2, tmp_path), os.path.relpath(stage1["root"] / "stage1", tmp_path)))
    for seed in (1, 2):
        code = infer_main(["--pipeline", str(spec), "--text", "in being comparatively modern.", "--seed", str(seed),
                           "--set", "infer.length_scale=1.5", "--output_dir", str(tmp_path / f"spec{seed}")])
        assert code == 0
    a, b = sf.read(tmp_path / "spec1" / "tts_0000.wav")[0], sf.read(tmp_path / "spec2" / "tts_0000.wav")[0]
    assert np.array_equal(a, b)  # noise_scale 0 from the spec: the seed does not matter


def test_latents_of_another_stage1_or_size_are_refused(stage1, tmp_path):
    features = tmp_path / "features"
    shutil.copytree(stage1["root"] / "features", features)
    with pytest.raises(LatentError, match="feature.json.*16"):
        LatentStore.open(features, expected_channels=16)
    info = features / LATENT_FEATURE / "feature.json"
    description = json.loads(info.read_text())
    description["stage1_fingerprint"] = "0000@1"
    info.write_text(json.dumps(description))
    with pytest.raises(LatentError, match="feature.json.*stage-1 checkpoint"):
        GlowWaveGANTrainer(_stage2_cfg(stage1, f"data.features_dir={features}"), tmp_path / "exp", cpu=True)
    # the extraction driver does not add this checkpoint's latents to the other one's
    assert extract_main(_extract_args(stage1["manifest"], features, stage1["root"] / "stage1")) != 0


def test_stage2_dir_alone_is_the_system(stage1, stage2):
    """The stage-2 checkpoint names its stage 1 (data.stage1_ckpt): load_pipeline on it alone builds both,
    the decoder as a frozen component with its provenance; a stage-1 dir as the acoustic model is refused."""
    tts = load_pipeline(str(stage2), ["infer.noise_scale=0.0", "infer.length_scale=1.5"])
    assert type(tts).__name__ == "GlowWaveGANSynthesizer" and tts.capabilities.tasks == frozenset({"tts"})
    assert tts.settings.length_scale == 1.5 and tts.decoder_source["step"] == 2
    stage1_dir = ckpt.latest_checkpoint(stage1["root"] / "stage1" / "checkpoints")
    assert tts.decoder_source["sha256"] == hashlib.sha256((stage1_dir / "generator.safetensors").read_bytes()).hexdigest()
    a, b = tts.synthesize(["in being comparatively modern."], seed=1), tts.synthesize(["in being comparatively modern."], seed=2)
    assert np.array_equal(a[0].waveform, b[0].waveform)  # noise_scale 0 from the overrides
    with pytest.raises(ckpt.CheckpointError, match="glow_wavegan_vae"):
        load_pipeline({"pipeline": "glow_wavegan", "components": {"acoustic": str(stage1["root"] / "stage1")}})
    with pytest.raises(ckpt.CheckpointError, match="'glow_wavegan'.*glow_wavegan_vae"):
        load_pipeline({"pipeline": "glow_wavegan", "components": {"acoustic": str(stage2), "decoder": str(stage2)}})
