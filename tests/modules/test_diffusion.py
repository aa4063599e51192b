"""modules/diffusion.py: schedule tables checked against their closed forms, noise levels, the sampler."""

from __future__ import annotations

import math

import pytest
import torch

from modules.diffusion import (
    NoiseSchedule, add_noise, cosine_betas, linear_betas, load_schedule, named_schedule, posterior_step,
    preset_names, refine, resolve_schedule, sample_continuous_noise_level, sample_training_noise_level,
    save_schedule, schedule_for_steps,
)  # fmt: skip

torch.set_num_threads(1)
TRAIN_FLOOR = float(NoiseSchedule.from_betas(linear_betas(1000)).noise_levels[-1])


def test_tables_match_closed_forms():
    betas = linear_betas(1000).double()
    s = NoiseSchedule.from_betas(betas)
    alpha_bar = torch.cumprod(1 - betas, 0)
    assert torch.allclose(s.alphas_cumprod.double(), alpha_bar, rtol=1e-4)
    # sum of log(1 - beta) for a linear schedule: close to -(S * mean beta) for small betas
    assert math.isclose(float(alpha_bar[-1].log()), -1000 * float(betas.mean()), rel_tol=0.01)
    assert s.noise_levels[0] == 1 and bool((s.noise_levels[1:] < s.noise_levels[:-1]).all())
    prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    variance = betas * (1 - prev) / (1 - alpha_bar)
    assert torch.allclose(s.posterior_log_variance[1:].double(), variance[1:].log(), atol=1e-3)
    assert float(s.posterior_log_variance[0]) == pytest.approx(math.log(1e-20), rel=1e-6)  # variance 0, floored


def test_posterior_mean_of_a_noise_free_state_is_the_previous_clean_state():
    """With y_t = sqrt(abar_t) y0 and the right y0, the posterior mean is sqrt(abar_{t-1}) y0 (DDPM identity)."""
    s = NoiseSchedule.from_betas(named_schedule("fast_6"))
    y0 = torch.linspace(-0.9, 0.9, 11).unsqueeze(0)
    for t in range(s.steps):
        mean = s.posterior_mean_coef1[t] * y0 + s.posterior_mean_coef2[t] * s.sqrt_alphas_cumprod[t] * y0
        assert torch.allclose(mean, s.alphas_cumprod_prev[t].sqrt() * y0, atol=1e-5)
    assert float(s.posterior_mean_coef1[0]) == pytest.approx(1.0) and float(s.posterior_mean_coef2[0]) == 0.0


@pytest.mark.parametrize("name", preset_names())
def test_presets_start_from_noise(name):
    s = NoiseSchedule.from_betas(named_schedule(name))
    assert bool(((s.betas > 0) & (s.betas < 1)).all())
    # y_T ~ N(0, I) is only right if the last level is at (or below) the training schedule's own floor
    assert float(s.noise_levels[-1]) <= max(TRAIN_FLOOR, 0.09)


def test_cosine_schedule_follows_its_formula():
    s = NoiseSchedule.from_betas(cosine_betas(20))
    expected = [math.cos(((k + 1) / 20 + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
                for k in range(19)]
    assert torch.allclose(s.alphas_cumprod[:19].double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("steps", [1, 3, 6, 50, 1000])
def test_schedule_for_steps_reaches_the_requested_level(steps):
    betas = schedule_for_steps(steps, TRAIN_FLOOR)
    s = NoiseSchedule.from_betas(betas)
    assert s.steps == steps and float(s.noise_levels[-1]) == pytest.approx(TRAIN_FLOOR, rel=1e-4)
    assert bool((betas[1:] >= betas[:-1]).all())
    if steps == 1000:
        assert torch.allclose(betas, linear_betas(1000), atol=1e-8)


def test_continuous_noise_level_stays_in_its_interval():
    s = NoiseSchedule.from_betas(linear_betas(1000))
    steps = torch.tensor([1, 500, 1000] * 200)
    levels = sample_continuous_noise_level(s, steps, generator=torch.Generator().manual_seed(0)).squeeze(-1)
    assert bool((levels <= s.noise_levels[steps - 1]).all() and (levels >= s.noise_levels[steps]).all())
    drawn = sample_training_noise_level(s, 4000, torch.Generator().manual_seed(1))
    assert drawn.shape == (4000, 1) and float(drawn.min()) >= TRAIN_FLOOR - 1e-6 and float(drawn.max()) <= 1.0
    with pytest.raises(ValueError, match="1..1000"):
        sample_continuous_noise_level(s, torch.tensor([0]))


def _oracle(y0):
    """A perfect noise predictor for a known clean signal."""

    def denoise(y, level):
        return (y - level * y0) / (1 - level**2).sqrt()

    return denoise


def test_refinement_with_a_perfect_denoiser_recovers_the_signal():
    y0 = 0.5 * torch.sin(torch.linspace(0, 20, 600)).unsqueeze(0)
    for name in ("fast_6", "linear_50"):
        s = NoiseSchedule.from_betas(named_schedule(name))
        out = refine(_oracle(y0), s, torch.randn(1, 600, generator=torch.Generator().manual_seed(3)),
                     generator=torch.Generator().manual_seed(4))
        assert torch.allclose(out, y0, atol=1e-4), name


def test_explicit_noise_equals_the_seeded_draws_and_counts_calls():
    s = NoiseSchedule.from_betas(named_schedule("fast_6"))
    calls = []

    def denoise(y, level):
        calls.append(float(level[0, 0]))
        return 0.3 * y

    y_T = torch.randn(2, 50, generator=torch.Generator().manual_seed(0))
    seeded = refine(denoise, s, y_T, generator=torch.Generator().manual_seed(7), return_states=True)
    assert len(calls) == 6 and calls == sorted(calls)  # noisiest level first
    assert calls == pytest.approx(s.noise_levels[1:].flip(0).tolist())
    gen = torch.Generator().manual_seed(7)
    noise = [torch.randn(2, 50, generator=gen) for _ in range(5)] + [torch.full((2, 50), float("nan"))]
    explicit = refine(denoise, s, y_T, step_noise=noise, return_states=True)
    assert torch.equal(seeded["states"], explicit["states"])  # the last step's noise is never used
    other = refine(denoise, s, y_T, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other, seeded["states"][-1])


def test_clipping_switch_clamps_the_clean_estimate():
    s = NoiseSchedule.from_betas(named_schedule("fast_6"))
    y = torch.full((1, 4), 3.0)
    eps = torch.zeros(1, 4)
    clipped, _ = posterior_step(s, y, eps, 2, clip_denoised=True)
    free, _ = posterior_step(s, y, eps, 2, clip_denoised=False)
    y0 = s.sqrt_recip_alphas_cumprod[2] * 3.0
    assert torch.allclose(free, s.posterior_mean_coef1[2] * y0 + s.posterior_mean_coef2[2] * 3.0)
    assert torch.allclose(clipped, s.posterior_mean_coef1[2] * 1.0 + s.posterior_mean_coef2[2] * 3.0)


def test_add_noise_keeps_unit_variance():
    gen = torch.Generator().manual_seed(0)
    y0, eps = torch.randn(1, 200000, generator=gen), torch.randn(1, 200000, generator=gen)
    out = add_noise(y0, torch.tensor([[0.6]]), eps)
    assert float(out.var()) == pytest.approx(1.0, abs=0.02)


def test_schedule_files_and_resolution(tmp_path):
    path = save_schedule(tmp_path / "s.json", [1e-4, 0.1, 0.9], score=1.5)
    assert load_schedule(path) == pytest.approx([1e-4, 0.1, 0.9])
    assert resolve_schedule(str(path)).steps == 3
    assert resolve_schedule("linear_50").steps == 50 and resolve_schedule([0.1, 0.2]).steps == 2
    with pytest.raises(ValueError, match="unknown noise schedule 'nope'"):
        resolve_schedule("nope")
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        NoiseSchedule.from_betas([0.1, 1.0])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not a schedule file"):
        load_schedule(tmp_path / "bad.json")
