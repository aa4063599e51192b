"""Shared test helpers: parity-fixture loading and the bundled real-speech corpus."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Mapping, Optional, Sequence

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
MINI_CORPUS = REPO_ROOT / "egs" / "mini" / "corpus"



def write_clip_manifest(tmp_path: Path, n_clips: int, seconds: float, bad: Sequence[str] = (),
                        labelled: bool = False) -> Path:
    """``n_clips`` real mini-corpus clips cut to ``seconds`` plus unreadable files named ``bad``, as a manifest.

    ``labelled``: clip n has speaker ``spk{n % 2}``, text ``text {n}`` and extra ``{"n": n}`` (else speaker "s",
    no text). Audio goes to ``tmp_path/audio``, the manifest to ``tmp_path/items.jsonl``.
    """
    import soundfile as sf

    from processors.data.manifest import ManifestEntry, write_manifest

    root = tmp_path / "audio"
    root.mkdir()
    entries = []
    for n, src in enumerate(sorted((MINI_CORPUS / "vctk").rglob("*.wav"))[:n_clips]):
        wav, sr = sf.read(str(src), dtype="float32")
        sf.write(str(root / f"c{n}.wav"), wav[: int(seconds * sr)], sr)
        labels = (f"spk{n % 2}", f"text {n}", {"n": n}) if labelled else ("s", "", {})
        entries.append(ManifestEntry(f"c{n}", str(root / f"c{n}.wav"), labels[0], labels[1], seconds, sr, labels[2]))
    for name in bad:
        (root / f"{name}.wav").write_bytes(b"RIFF0000WAVEjunk")
        entries.append(ManifestEntry(name, str(root / f"{name}.wav"), "s", "", 0.0, 0))
    return write_manifest(entries, tmp_path / "items.jsonl")

def run_recipe(run_sh: Path, *args: str, cwd: Optional[Path] = None, env: Optional[Mapping[str, str]] = None,
               timeout: int = 120) -> subprocess.CompletedProcess:
    """``bash run_sh *args`` with this test's Python as ECHELON_PYTHON; stdout/stderr captured as text."""
    full_env = {**os.environ, "ECHELON_PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(run_sh), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip



def assert_recipe_cli(run_sh: Path, cwd: Path, help_needles: Sequence[str],
                      errors: Mapping[tuple[str, ...], str]) -> None:
    """``run_sh --help`` succeeds and lists ``help_needles``; an unknown option and each of ``errors``' argument
    lists fail with the mapped text in stderr."""
    out = run_recipe(run_sh, "--help", cwd=cwd)
    assert out.returncode == 0, out.stderr
    for needle in help_needles:
        assert needle in out.stdout, needle
    for args, needle in {("--no_such_option", "1"): "no_such_option", **errors}.items():
        bad = run_recipe(run_sh, *args, cwd=cwd)
        assert bad.returncode != 0 and needle in bad.stderr, (args, bad.stderr)

def load_script(path: Path) -> ModuleType:
    """Import a recipe's stand-alone script (``egs/**/local/*.py``, not a package) from its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixtures_dir() -> Path:
    """Directory of the official parity fixtures: $ECHELON_FIXTURES or ../shared/fixtures."""
    return Path(os.environ.get("ECHELON_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


def load_fixture(relpath: str) -> Dict[str, Any]:
    """Load one fixture file with ``weights_only=True``; skip the test only if the fixture dir is absent."""
    root = fixtures_dir()
    if not root.is_dir():
        pytest.skip(f"parity fixtures not found at {root} (set ECHELON_FIXTURES)")
    path = root / relpath
    if not path.is_file():
        raise FileNotFoundError(f"fixture file missing: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def float_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Fixture weights are stored as fp16 (some as strided views): copy to contiguous float32."""
    return {k: (v.float().contiguous() if v.is_floating_point() else v.clone()) for k, v in state_dict.items()}



def hierspeech_config_of(fx: Dict[str, Any]):
    """A synthesizer fixture's stored official constructor arguments as an Echelon HierSpeechPPConfig."""
    from models.tts.hierspeechpp.config import from_official_config

    cfg = fx["config"]
    block = dict(cfg["model"], spec_channels=cfg["spec_channels"], segment_frames=cfg["segment_size_frames"])
    return from_official_config({"model": block, "data": cfg.get("data", {})})

# YAAPT F0 against a stored official contour.  amfm_decompy's NCCF (crs_corr) uses BLAS dot products, whose
# summation order depends on the BLAS kernel (e.g. OPENBLAS_CORETYPE=Haswell vs the auto-detected one): the
# merits move by ~1e-16 and YAAPT's dynamic programming, which breaks exact ties, can then pick a neighbouring
# candidate for a few frames (the library and our fast port change together).  Pitch candidates are fs / lag
# for an integer lag in samples (YAAPT's dec_factor is 1, so at fs itself), so "one lag step" is
# fs/L -> fs/(L +- 1): a relative F0 change of about 1/L, i.e. one sample of period, ~0.4 % at 60 Hz and ~7 % at
# 1100 Hz (L = 14.5 .. 267 for the VC range 60-1100 Hz at 16 kHz).  A flipped tie either picks a candidate one
# lag away or moves a pitch transition by one frame (the frame then takes its neighbour's lag), so a differing
# frame must lie within one lag step of the lags the stored contour has on that frame and its two neighbours.
# Measured on 80 real clips x 2 F0 ranges (VC 1100 Hz, TTV 400 Hz), each run with and without
# OPENBLAS_CORETYPE=Haswell: 55 of the 160 contours differed, every voiced/unvoiced decision was kept, 159 met
# this rule (at most 0.6 % of frames differing); one did not (a 20-frame voiced run of one clip took another
# candidate, 130.0 vs 136.5 Hz, 1.7 % of frames).  The fixture's target clip differs at 2 of 600 frames: lag
# 90 -> 92 at frame 32 (its neighbour's value, a transition one frame early) and 92 -> 93 at frame 33.
YAAPT_MIN_EXACT_FRACTION = 0.99
YAAPT_LAG_STEPS = 1.0


def assert_yaapt_f0_matches(got, expected, sample_rate: int, name: str) -> None:
    """YAAPT F0 ``(T,)`` in Hz vs a stored official contour, allowing only the BLAS effect described above.

    Same shape; the same voiced/unvoiced decision on every frame; at least 99 % of frames bit-identical; on
    every other frame the lag ``sample_rate / F0`` within one lag step of the lags the stored contour has on
    that frame and its two neighbours.
    """
    import numpy as np

    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{name}: {got.shape} frames vs {expected.shape}"
    assert np.array_equal(got > 0, expected > 0), (
        f"{name}: voiced/unvoiced differs at frames {np.nonzero((got > 0) != (expected > 0))[0].tolist()[:20]}")
    differ = np.nonzero(got != expected)[0]
    exact = 1.0 - differ.size / max(got.size, 1)
    assert exact >= YAAPT_MIN_EXACT_FRACTION, f"{name}: only {exact:.2%} of frames exact ({differ.size} differ)"
    for i in differ.tolist():
        around = expected[max(i - 1, 0): i + 2]
        lags = sample_rate / around[around > 0]
        lag = sample_rate / got[i]
        slack = YAAPT_LAG_STEPS + 1e-9 * lag  # fs / (fs / L) is L only up to rounding
        assert lags.min() - slack <= lag <= lags.max() + slack, (
            f"{name}: frame {i} has lag {lag:.2f} samples ({got[i]:.2f} Hz); the stored contour has lags "
            f"{np.round(lags, 2).tolist()} around it (more than {YAAPT_LAG_STEPS:g} lag step away)")


# Tolerances stated in the fixtures' README ("Suggested test tolerances", ../shared/fixtures/README.md): they
# hold whatever the machine's BLAS (OPENBLAS_CORETYPE=Haswell and others move float32 sums by ~1e-5).
WAVEFORM_MAX_ABS = 1e-4  # waveforms, F0/pitch, w2v features, style vectors: max |diff|
INTERMEDIATE_TOL = 1e-4  # other float intermediates and losses: allclose(rtol=1e-4, atol=1e-4)


def assert_waveform_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Waveform-like outputs: max absolute difference within :data:`WAVEFORM_MAX_ABS`."""
    actual, expected = torch.as_tensor(actual).double(), torch.as_tensor(expected).double()
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert diff <= WAVEFORM_MAX_ABS, f"{what}: max |diff| {diff:.3g} > {WAVEFORM_MAX_ABS}"


def assert_intermediate_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Float intermediates (hidden states, log-durations, losses): ``allclose(rtol=1e-4, atol=1e-4)``."""
    torch.testing.assert_close(torch.as_tensor(actual).double(), torch.as_tensor(expected).double(),
                               rtol=INTERMEDIATE_TOL, atol=INTERMEDIATE_TOL, msg=lambda m: f"{what}: {m}")


def randomize_amp_blocks(module: torch.nn.Module) -> None:
    """Spread the SnakeBeta alphas/betas and the conv weights (``weight_v``, before folding) of every AMP block in
    ``module``, so that each layer does visible work (the default init leaves the convs near zero)."""
    from modules.vocoders.amp import AMPBlock

    with torch.no_grad():
        for block in module.modules():
            if isinstance(block, AMPBlock):
                for act in block.activations:
                    act.act.alpha.normal_(0, 0.5)
                    act.act.beta.normal_(0, 0.5)
                for conv in list(block.convs1) + list(block.convs2):
                    conv.weight_v.normal_(0, 0.3)
