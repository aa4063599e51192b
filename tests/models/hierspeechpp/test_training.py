"""HierSpeech++ synthesizer training: gradients reach the right parameters, a tiny model learns on real speech,
and a resumed run continues exactly like an uninterrupted one (through the shared trainer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
import torch

from models.tts.hierspeechpp.config import HierSpeechPPConfig
from models.tts.hierspeechpp.losses import LossWeights, discriminator_objective, generator_objective
from models.tts.hierspeechpp.training import HierSpeechPPForTraining
from modules.discriminators import hierspeechpp_discriminator
from processors.audio import load_audio
from processors.spectrogram import HierSpeechLinearSpectrogram, HierSpeechLogMel
from tests.helpers import MINI_CORPUS
from utils.config import load_config, validate
from utils.registry import get

pytest.importorskip("parselmouth")

TINY_CONFIG = Path(__file__).resolve().parents[3] / "models" / "tts" / "hierspeechpp" / "configs" / "train_tiny.json5"
CLIPS = ["vctk/p225/p225_003.wav", "vctk/p226/p226_003.wav", "vctk/p227/p227_003.wav", "vctk/p228/p228_003.wav"]
CLIP_FRAMES = 24
SUBMODULES = ("emb_g", "enc_q", "enc_p", "enc_p_l", "flow", "flow_l", "mel_decoder", "sn", "dec")


def tiny_model_config(ssl_channels: int = 32, segment: int = 8) -> HierSpeechPPConfig:
    raw = load_config(TINY_CONFIG)["model"]
    return HierSpeechPPConfig(**{**raw, "ssl_channels": ssl_channels, "segment_frames": segment})


def real_batch(frames: int = 24, ssl_channels: int = 32) -> Dict[str, torch.Tensor]:
    """Two real clips (second one shorter: padding), spectrograms, stand-in SSL, real-looking log-F0."""
    hop = 320
    waves = [load_audio(MINI_CORPUS / c, 16000)[8000 : 8000 + frames * hop] for c in CLIPS[:2]]
    lengths = torch.tensor([frames, frames - 4])
    audio = torch.zeros(2, 1, frames * hop)
    for b, w in enumerate(waves):
        audio[b, 0, : int(lengths[b]) * hop] = torch.from_numpy(w[: int(lengths[b]) * hop])
    samples = lengths * hop
    linear, _ = HierSpeechLinearSpectrogram()(audio.squeeze(1), samples)
    mel, _ = HierSpeechLogMel()(audio.squeeze(1), samples)
    gen = torch.Generator().manual_seed(0)
    ssl = torch.randn(2, ssl_channels, frames, generator=gen)
    log_f0 = torch.log(torch.full((2, 1, 4 * frames), 120.0) + 1.0)
    return {"audio": audio, "linear": linear, "mel": mel, "ssl": ssl, "ssl_aug": ssl + 0.1 * torch.randn_like(ssl),
            "log_f0": log_f0, "lengths": lengths}  # fmt: skip


def _grad_norms(module: torch.nn.Module) -> List[float]:
    return [float(p.grad.norm()) if p.grad is not None else 0.0 for p in module.parameters()]


def test_generator_and_discriminator_backward() -> None:
    torch.manual_seed(0)
    model = HierSpeechPPForTraining.from_config(tiny_model_config())
    disc = hierspeechpp_discriminator(resolutions=[[512, 128, 512], [128, 32, 128]], periods=[3])
    batch = real_batch()
    out = model(**batch, segment_frames=8, uncond_ratio=0.0, uniform=torch.tensor([0.3, 0.9]))
    assert out["audio_hat"].shape == out["audio_slice"].shape == (2, 1, 8 * 320)
    # Windows are cut at the drawn starts inside each item's valid length.
    assert out["starts"].tolist() == [int(0.3 * (24 - 8 + 1)), int(0.9 * (20 - 8 + 1))]
    start = int(out["starts"][1])
    torch.testing.assert_close(out["audio_slice"][1], batch["audio"][1, :, start * 320 : (start + 8) * 320])
    mel_fn = HierSpeechLogMel()
    out["mel"] = torch.nn.functional.l1_loss(mel_fn(out["audio_hat"].squeeze(1)), mel_fn(out["audio_slice"].squeeze(1)))

    # Discriminator step: gradients in D only (the generated window is detached).
    real, fake, _, _ = disc(out["audio_slice"], out["audio_hat"].detach())
    discriminator_objective(real, fake).backward()
    d_norms = _grad_norms(disc)
    assert all(np.isfinite(d_norms)) and all(n > 0 for n in d_norms), "every D parameter gets a finite gradient"
    assert all(p.grad is None for p in model.parameters())

    # Generator step with D frozen: gradients in every generator submodule, none in D.
    disc.zero_grad(set_to_none=True)
    disc.requires_grad_(False)
    _, fake, fmap_real, fmap_fake = disc(out["audio_slice"], out["audio_hat"])
    terms = {k: out[k] for k in ("mel", "kl_a", "kl_a_rev", "kl_s", "kl_s_rev", "f0", "prosody")}
    losses = generator_objective(terms, fake, fmap_real, fmap_fake, LossWeights())
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert all(p.grad is None for p in disc.parameters())
    for name in SUBMODULES:
        norms = _grad_norms(getattr(model, name))
        assert all(np.isfinite(norms)), name
        assert sum(norms) > 0, f"{name} receives no gradient"
    assert not bool(out["uncond"].any()) and float(model.emb.weight.grad.abs().sum()) == 0.0


def test_generator_objective_weights_every_term() -> None:
    """The total is the documented weighted sum (distinct weights, so a swapped or dropped weight shows)."""
    gen = torch.Generator().manual_seed(5)
    names = ("mel", "kl_a", "kl_a_rev", "kl_s", "kl_s_rev", "f0", "prosody")
    terms = {k: torch.rand((), generator=gen) for k in names}
    fake = [torch.rand(2, 7, generator=gen), torch.rand(2, 3, generator=gen)]
    fmap_real = [[torch.rand(2, 4, generator=gen)], [torch.rand(2, 5, generator=gen), torch.rand(2, 6, generator=gen)]]
    fmap_fake = [[torch.rand(2, 4, generator=gen)], [torch.rand(2, 5, generator=gen), torch.rand(2, 6, generator=gen)]]
    w = LossWeights(c_mel=2.0, c_kl=3.0, c_bi_kl=5.0, c_f0=7.0, c_prosody=11.0, c_adv=13.0, c_fm=17.0)
    adv = sum(float(((1 - d) ** 2).mean()) for d in fake)
    fm = 2.0 * sum(float((r - f).abs().mean()) for rs, fs in zip(fmap_real, fmap_fake) for r, f in zip(rs, fs))
    t = {k: float(v) for k, v in terms.items()}
    expected = (2 * t["mel"] + 3 * (t["kl_a"] + t["kl_s"]) + 5 * (t["kl_a_rev"] + t["kl_s_rev"]) + 7 * t["f0"]
                + 11 * t["prosody"] + 13 * adv + 17 * fm)  # fmt: skip
    out = generator_objective(terms, fake, fmap_real, fmap_fake, w)
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-6)
    assert float(out["adv"]) == pytest.approx(adv, rel=1e-6) and float(out["fm"]) == pytest.approx(fm, rel=1e-6)
    # Before the discriminator starts there are no GAN terms.
    no_gan = generator_objective(terms, [], [], [], w)
    assert float(no_gan["loss"]) == pytest.approx(expected - 13 * adv - 17 * fm, rel=1e-6)


def test_kl_terms_follow_the_hierarchy() -> None:
    """Each term must reach exactly the modules of its level (this fixes which encoder is which).

    All items get the CFG null style here (uncond_ratio 1), so the style comes from ``emb`` and not ``emb_g``.
    """
    torch.manual_seed(1)
    model = HierSpeechPPForTraining.from_config(tiny_model_config())
    out = model(**real_batch(), segment_frames=8, uncond_ratio=1.0)
    assert bool(out["uncond"].all())
    expected = {
        "kl_a": {"enc_q", "flow", "enc_p"},
        "kl_s": {"enc_p", "flow_l", "enc_p_l"},
        "prosody": {"enc_p", "mel_decoder"},
        "f0": {"enc_q", "sn"},
    }
    for term, owners in expected.items():
        model.zero_grad(set_to_none=True)
        out[term].backward(retain_graph=True)
        reached = {n for n in SUBMODULES if sum(_grad_norms(getattr(model, n))) > 0}
        assert reached == owners, f"{term} reaches {sorted(reached)}, expected {sorted(owners)}"
        assert float(model.emb.weight.grad.abs().sum()) > 0, f"{term}: the null style must be trained"


# ---------------------------------------------------------------------------------------------- trainer runs
def write_short_corpus(folder: Path) -> Path:
    """Four real VCTK clips (one per speaker) cut to 24 frames (0.48 s) of speech into ``folder``, with a JSONL
    manifest (returned). Every clip is exactly one generator window long, so the model sees the same four
    utterances every epoch."""
    import soundfile as sf

    rows = []
    for clip in CLIPS:
        wav = load_audio(MINI_CORPUS / clip, 16000)[6400 : 6400 + CLIP_FRAMES * 320]
        path = folder / f"{Path(clip).stem}.wav"
        sf.write(path, wav, 16000)
        rows.append({"id": path.stem, "path": path.name, "speaker": clip.split("/")[1], "text": "",
                     "duration": wav.shape[0] / 16000, "sample_rate": 16000})  # fmt: skip
    manifest = folder / "train.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return manifest


@pytest.fixture()
def short_corpus(tmp_path: Path) -> Path:
    return write_short_corpus(tmp_path)


def tiny_trainer(manifest: Path, exp_dir: Path, overrides: List[str], resume: bool = False, cpu: bool = True):
    """The HierSpeech++ trainer of configs/train_tiny.json5 on ``manifest`` (``cpu=False``: a visible GPU)."""
    raw = load_config(TINY_CONFIG, [f"data.train_manifest={manifest}", *overrides])
    cls = get("trainer", "hierspeechpp")
    return cls(validate(raw, cls.config_class), exp_dir, resume=resume, cpu=cpu)


def record_steps(trainer, after_each: Optional[Callable[[], None]] = None) -> List[Dict[str, float]]:
    """The values of each step ``trainer`` runs from now on; ``after_each()`` is called after every step."""
    logged: List[Dict[str, float]] = []
    after = trainer._after_step

    def hook(values, bar):
        logged.append(dict(values))
        after(values, bar)
        if after_each is not None:
            after_each()

    trainer._after_step = hook
    return logged


LEARN_STEPS = 40


def test_tiny_model_learns_on_real_clips(short_corpus: Path, tmp_path: Path) -> None:
    """Full GAN training (perturbation, both KL levels, F0, prosody, MPD + MS-STFT) on 4 real clips.

    The mel L1 of the generated windows must fall clearly. Measured with this setup (lr 2e-4, batch 2, one thread as pinned by tests/conftest.py):
    first-5-step mean 3.03 -> last-5-step mean 2.15 after 40 steps (-29 %; 2.37 after 30), F0 L1 2.7 -> ~0.9;
    68 s of CPU for the 40 steps (2.6 min wall on a machine loaded ~9 on 2 cores).
    """
    overrides = [f"train.max_steps={LEARN_STEPS}", "train.save_every=0", f"model.segment_frames={CLIP_FRAMES}"]
    trainer = tiny_trainer(short_corpus, tmp_path / "exp", overrides)
    logged = record_steps(trainer)
    trainer.train()
    mel = [v["mel"] for v in logged]
    assert len(mel) == LEARN_STEPS
    assert all(np.isfinite(v["loss_gen_total"]) and np.isfinite(v["loss_disc"]) for v in logged)
    first, last = float(np.mean(mel[:5])), float(np.mean(mel[-5:]))
    print(f"mel L1 first-5 mean {first:.3f} -> last-5 mean {last:.3f}")
    assert last < 0.85 * first, f"mel L1 did not fall clearly: {first:.3f} -> {last:.3f}"


def test_resume_continues_identically(short_corpus: Path, tmp_path: Path) -> None:
    """Stop after step 2, resume through the shared trainer: steps 3-4 equal an uninterrupted run's exactly
    (data order, crops, perturbation, CFG dropout, posterior noise, windows, optimizer and scheduler states)."""
    overrides = ["train.max_steps=4", "train.save_every=2", "train.keep_last=3", f"model.segment_frames={CLIP_FRAMES}"]
    full = tiny_trainer(short_corpus, tmp_path / "full", overrides)
    full_log = record_steps(full)
    full.train()
    # A second run stopped after its step-2 checkpoint, then resumed in the same directory.
    part_dir = tmp_path / "part"
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step_00000002", part_dir / "checkpoints" / "step_00000002")
    resumed = tiny_trainer(short_corpus, part_dir, overrides, resume=True)
    assert resumed.step == 2
    resumed_log = record_steps(resumed)
    resumed.train()
    assert [v["loss_gen_total"] for v in resumed_log] == [v["loss_gen_total"] for v in full_log[2:]]
    for name in ("generator", "discriminator"):
        a, b = full.unwrap(name).state_dict(), resumed.unwrap(name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} weights differ after resume"
