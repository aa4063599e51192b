"""The CUDA paths: VITS and HierSpeech++ against the official fixtures on the GPU (the other families:
test_cuda_families.py), seeded random streams, the shared trainer (plain, mixed precision, resume) and the
generic CLIs with ``--device cuda``.

Skipped where no CUDA GPU is visible (CI and our CPU machines); run on a lent GPU by ``benchmarks/cuda_check.sh``.
``ECHELON_TEST_DEVICE=cpu`` runs the same code on the CPU, to check the tests themselves without a GPU.

TF32 is switched off for these tests: it rounds matrix-product and convolution inputs to 10 mantissa bits
(~1e-3 relative), while the fixtures were made in full float32 on a CPU. In float32 the GPU then meets the
fixtures' own tolerances (fixtures/README.md); only the summation order differs.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from bins import infer, train
from models.base import checkpoint as ckpt
from models.base.streaming import PrivateRandom
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.tts.vits.model import VITS
from tests.helpers import MINI_CORPUS, REPO_ROOT, float_state_dict, hierspeech_config_of, load_fixture
from tests.models.hierspeechpp.test_training import CLIP_FRAMES, record_steps, tiny_trainer, write_short_corpus
from tests.models.vits.test_vits_parity import FIXTURES as VITS_FIXTURES
from tests.models.vits.test_vits_parity import build_from_fixture as build_vits
from utils.rng import seeded

DEVICE = torch.device(os.environ.get("ECHELON_TEST_DEVICE", "cuda"))
ON_GPU = DEVICE.type == "cuda"
WAVE_TOL = 1e-4  # fixtures/README.md: waveforms max abs diff
TOY_CONFIG = REPO_ROOT / "models/example/toy_autoencoder/configs/toy.json5"

pytestmark = pytest.mark.skipif(ON_GPU and not torch.cuda.is_available(),
                                reason=f"needs a CUDA GPU (torch {torch.__version__} sees none)")


@pytest.fixture(autouse=True)
def _full_float32():
    if not ON_GPU:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def on_device(tensors: dict) -> dict:
    return {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v for k, v in tensors.items()}


def assert_max_abs(actual: torch.Tensor, expected: torch.Tensor, name: str, tol: float = WAVE_TOL) -> None:
    assert actual.device.type == DEVICE.type, f"{name} came back on {actual.device}, not {DEVICE}"
    actual = actual.detach().cpu()
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    diff = float((actual - expected).abs().max())
    assert diff <= tol, f"{name} on {DEVICE}: max abs diff {diff:.3g} > {tol}"


# ----------------------------------------------------------------------------- models against the official code
def test_vits_voice_conversion_matches_official_on_the_device():
    """Every fixture that stores a voice conversion (the multi-speaker one), replayed with its enc_q noise."""
    replayed = 0
    for name in VITS_FIXTURES:
        fx = load_fixture(name)
        inp, out = on_device(fx["inputs"]), fx["outputs"]
        if "vc_spec" not in inp:
            continue
        model = build_vits(fx).to(DEVICE)
        with torch.no_grad():
            res = model.voice_conversion(inp["vc_spec"], inp["vc_spec_length"], inp["vc_sid_src"],
                                         inp["vc_sid_tgt"], noise=inp["vc_enc_q_noise"])
        assert_max_abs(res["wav"], out["vc_wav"], f"{name} vc_wav")
        replayed += 1
    assert replayed >= 1


@pytest.mark.parametrize("name", VITS_FIXTURES)
def test_vits_text_to_speech_on_the_device_equals_the_cpu(name):
    """Without sampling noise (scales 0) text-to-speech is deterministic: the device gives the CPU's durations and
    waveform (the fixtures' own TTS used CPU random numbers, which a GPU cannot replay)."""
    fx = load_fixture(name)
    model = build_vits(fx)
    inp = fx["inputs"]
    kwargs = dict(sid=inp.get("sid"), noise_scale=0.0, noise_scale_w=0.0, length_scale=inp["length_scale"])
    with torch.no_grad():
        cpu = model.infer(inp["ids"], inp["ids_length"], **kwargs)
        model.to(DEVICE)
        dev = model.infer(**on_device({"x": inp["ids"], "x_lengths": inp["ids_length"], **kwargs}))
    assert torch.equal(dev["lengths"].cpu(), cpu["lengths"]), "the device predicted other durations"
    assert_max_abs(dev["wav"], cpu["wav"], "wav")


@pytest.fixture(scope="module")
def hsp():
    fx = load_fixture("hierspeechpp/synth_vc_tiny.pt")
    model = HierSpeechPPSynthesizer.from_config(hierspeech_config_of(fx))
    model.set_leaky_padding(True)
    model.load_state_dict(float_state_dict(fx["state_dict"]), strict=True)
    return model.eval().to(DEVICE), on_device(fx["inputs"]), fx["outputs"]


def test_hierspeechpp_voice_conversion_matches_official_on_the_device(hsp):
    model, inp, out = hsp
    with torch.no_grad():
        g_rows = model.style(inp["prompt_mel_same"], inp["prompt_length"])
        res = model.convert(inp["w2v"], inp["length"], inp["log_f0"], g_rows[:1], noise_scale=0.0)
        ratio = float(inp["denoise_ratio"])
        denoised = model.voice_conversion_noise_control(inp["w2v"], inp["length"], inp["prompt_mel_pair"],
                                                        inp["prompt_length"], inp["log_f0"], noise_scale=0.0,
                                                        denoise_ratio=ratio)
    assert_max_abs(g_rows, out["vc_g_rows"], "vc_g_rows")
    assert_max_abs(res["sn_f0"], out["vc_sn_f0"], "vc_sn_f0")
    assert_max_abs(res["wav"], out["vc_wav"], "vc_wav")
    assert_max_abs(denoised, out["vc_den_wav"], "vc_den_wav")


def test_hierspeechpp_synthesis_with_injected_noise_matches_official_on_the_device(hsp):
    model, inp, out = hsp
    with torch.no_grad():
        wav, f0 = model.infer(inp["seg_mel"], inp["w2v"], inp["length"], inp["log_f0"], noise=inp["infer_noise"])
    assert_max_abs(wav, out["infer_wav"], "infer_wav")
    assert_max_abs(f0, out["infer_sn_f0"], "infer_sn_f0")


# ----------------------------------------------------------------------------- random generators
def device_state() -> torch.Tensor:
    return torch.cuda.get_rng_state() if ON_GPU else torch.get_rng_state()


def test_seeded_blocks_touch_only_the_generators_they_name():
    """A helper model built under ``seeded(seed)`` (CPU) leaves the device's generator as it was; a block seeded
    for the device draws the same there each time and gives the state back."""
    torch.randn(8, device=DEVICE)  # the device's generator somewhere past its seed
    before = device_state()
    with seeded(3):
        torch.nn.Linear(8, 8)
    if ON_GPU:
        assert torch.equal(device_state(), before), "a CPU-seeded block moved the GPU's generator"
    draws = []
    for _ in range(2):
        with seeded(5, DEVICE):
            draws.append(torch.randn(16, device=DEVICE))
    assert torch.equal(draws[0], draws[1]) and torch.equal(device_state(), before)


def test_streams_interleaved_on_the_device_draw_what_each_draws_alone():
    alone = {}
    for seed in (1, 2):
        with PrivateRandom(seed).active():
            alone[seed] = torch.stack([torch.randn(4, device=DEVICE) for _ in range(3)])
    streams = {seed: PrivateRandom(seed) for seed in (1, 2)}
    rows = {1: [], 2: []}
    for _ in range(3):
        for seed, stream in streams.items():
            with stream.active():
                rows[seed].append(torch.randn(4, device=DEVICE))
    for seed in (1, 2):
        assert torch.equal(torch.stack(rows[seed]), alone[seed]), f"stream {seed} drew other numbers"


# ----------------------------------------------------------------------------- the shared trainer
@pytest.fixture(scope="module")
def four_clips(tmp_path_factory) -> Path:
    return write_short_corpus(tmp_path_factory.mktemp("clips"))


def hsp_trainer(manifest: Path, exp_dir: Path, *overrides: str, resume: bool = False):
    return tiny_trainer(manifest, exp_dir, [f"model.segment_frames={CLIP_FRAMES}", "train.save_every=0", *overrides],
                        resume=resume, cpu=not ON_GPU)


def test_hierspeechpp_learns_on_the_device_and_its_checkpoint_loads_on_a_cpu(four_clips, tmp_path):
    """The full GAN objective (perturbation, both KL levels, F0, MPD + MS-STFT) on the device: the mel L1 of the
    generated windows falls as on the CPU (tests/models/hierspeechpp/test_training.py), and the saved weights load
    on a machine without a GPU (weights_only) equal to the device's."""
    trainer = hsp_trainer(four_clips, tmp_path / "exp", "train.max_steps=40", "train.save_every=40")
    assert trainer.device.type == DEVICE.type
    logged = record_steps(trainer)
    trainer.train()
    mel = [v["mel"] for v in logged]
    assert len(mel) == 40 and all(np.isfinite(v["loss_gen_total"]) and np.isfinite(v["loss_disc"]) for v in logged)
    first, last = float(np.mean(mel[:5])), float(np.mean(mel[-5:]))
    assert last < 0.85 * first, f"mel L1 did not fall clearly on {DEVICE}: {first:.3f} -> {last:.3f}"
    generator = trainer.unwrap("generator")
    assert next(generator.parameters()).device.type == DEVICE.type
    saved = ckpt.resolve_checkpoint_dir(tmp_path / "exp")
    weights = load_file(Path(saved) / "generator.safetensors", device="cpu")
    for key, value in generator.state_dict().items():
        assert torch.equal(weights[key], value.cpu()), f"saved {key} differs from the device's"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_stay_finite(four_clips, tmp_path, precision):
    if precision == "fp16" and not ON_GPU:
        pytest.skip("fp16 needs a GPU")
    trainer = hsp_trainer(four_clips, tmp_path / "exp", "train.max_steps=6", f"train.mixed_precision={precision}")
    logged = record_steps(trainer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert not [w for w in caught if "lr_scheduler" in str(w.message) or "optimizer.step" in str(w.message)]
    assert len(logged) == 6
    assert all(np.isfinite(v["loss_gen_total"]) and np.isfinite(v["loss_disc"]) for v in logged), logged


def test_resume_on_the_device_continues_the_run(four_clips, tmp_path):
    """Stopped after step 2 and resumed: the device's random state and step 3 equal the uninterrupted run's (data
    order, crops, noise come back), as tests/models/hierspeechpp/test_training.py checks bit for bit on the CPU.
    Step 4 only to 1 %: CUDA has no deterministic backward for reflection padding (atomic sums), and Adam's first
    steps turn such last-bit gradient differences into whole learning-rate steps for near-zero gradients."""
    overrides = ("train.max_steps=4", "train.save_every=2")
    full = hsp_trainer(four_clips, tmp_path / "full", *overrides)
    full_states: list = []
    full_log = record_steps(full, lambda: full_states.append(device_state()))
    full.train()
    stopped = tmp_path / "part" / "checkpoints" / "step_00000002"
    stopped.parent.mkdir(parents=True)
    os.symlink(tmp_path / "full" / "checkpoints" / "step_00000002", stopped)
    resumed = hsp_trainer(four_clips, tmp_path / "part", *overrides, resume=True)
    assert resumed.step == 2
    states: list = []
    logged = record_steps(resumed, lambda: states.append(device_state()))
    resumed.train()
    got, expected = [v["loss_gen_total"] for v in logged], [v["loss_gen_total"] for v in full_log[2:]]
    assert torch.equal(states[0], full_states[2]), \
        f"the device's random state after step 3 differs from the full run's (losses {got} vs {expected})"
    assert got[0] == pytest.approx(expected[0], rel=1e-5), f"step 3: {got} vs {expected}"
    assert got[1] == pytest.approx(expected[1], rel=1e-2), f"step 4: {got} vs {expected}"


# ----------------------------------------------------------------------------- the generic CLIs
def test_train_and_infer_clis_on_the_device(tmp_path, caplog):
    """``echelon-train`` picks the visible GPU by itself; ``echelon-infer --device cuda`` writes what the CPU writes."""
    clips = sorted((MINI_CORPUS / "vctk").glob("p22[56]/*.wav"))[:8]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"id": c.stem, "path": str(c), "speaker": c.parent.name, "text": "",
                                            "duration": 0.0, "sample_rate": 16000}) + "\n" for c in clips))
    exp = tmp_path / "exp"
    caplog.set_level("INFO")
    assert train.main(["--config", str(TOY_CONFIG), "--exp_dir", str(exp), f"data.train_manifest={manifest}",
                       f"data.valid_manifest={manifest}", "train.max_steps=30", "train.tensorboard=false",
                       *([] if ON_GPU else ["--cpu"])]) == 0
    assert f"training on {DEVICE.type}" in caplog.messages
    outputs = {}
    for device in dict.fromkeys(("cpu", str(DEVICE))):  # one run when the "device" is the CPU
        out = tmp_path / f"out_{device}"
        assert infer.main(["--ckpt_dir", str(exp), "--inputs", str(clips[0]), "--output_dir", str(out),
                           "--device", device]) == 0
        outputs[device] = sf.read(out / f"{clips[0].stem}.wav", dtype="float32")[0]
    cpu, dev = outputs["cpu"], outputs[str(DEVICE)]
    assert cpu.shape == dev.shape and float(np.abs(cpu - dev).max()) <= 1e-4
