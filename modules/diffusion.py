"""Denoising diffusion pieces (WaveGrad / DDPM): noise schedules, continuous noise levels, the refinement sampler.

Conventions (WaveGrad; Chen et al. 2020, 2021):

* A schedule is a list of ``S`` variances ``beta_1..beta_S``; ``alpha_n = 1 - beta_n`` and ``alpha_bar_n`` is the
  cumulative product. The network is conditioned on the *noise level* ``sqrt(alpha_bar)`` (a continuous value),
  never on a step index, so a model trained on one schedule samples with any other.
* Forward process: ``y_noisy = sqrt(alpha_bar) * y0 + sqrt(1 - alpha_bar) * eps``.
* Refinement step ``t`` (0-based, ``S-1 .. 0``) feeds the network ``sqrt(alpha_bar_t)`` (index ``t`` of
  :attr:`NoiseSchedule.sqrt_alphas_cumprod`, equal to ``noise_levels[t + 1]``), estimates ``y0`` from the
  predicted noise (optionally clipped to [-1, 1]), and draws from the DDPM posterior ``q(y_{t-1} | y_t, y0)``.

Tables are computed in float64 and stored as float32; ``precision="float32"`` reproduces the float32 arithmetic of
the public WaveGrad/WaveGrad 2 code bit for bit (the parity tests compare those tables exactly). Schedules are plain data:
``named_schedule("linear_1000")``, ``linear_betas(...)``, ``cosine_betas(...)`` or an explicit list, and
``save_schedule``/``load_schedule`` read and write the JSON schedule files that inference accepts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Literal, Optional, Sequence, Union

import torch

from utils.io import atomic_write_text

_VARIANCE_FLOOR = 1e-20  # posterior variance of step 0 is exactly 0: clip before the log


def linear_betas(steps: int, beta_start: float = 1e-6, beta_end: float = 0.01) -> torch.Tensor:
    """``steps`` variances evenly spaced from ``beta_start`` to ``beta_end`` (WaveGrad training: 1000, 1e-6, 0.01)."""
    if steps < 1:
        raise ValueError(f"linear_betas: steps must be >= 1, got {steps}")
    return torch.linspace(beta_start, beta_end, steps)


def cosine_betas(steps: int, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule (Nichol & Dhariwal 2021): ``alpha_bar(t) = cos^2((t/S + s) / (1 + s) * pi/2)``."""
    if steps < 1:
        raise ValueError(f"cosine_betas: steps must be >= 1, got {steps}")

    def alpha_bar(t: float) -> float:
        return math.cos((t / steps + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar(i + 1) / alpha_bar(i), max_beta) for i in range(steps)]
    return torch.tensor(betas, dtype=torch.float32)


# Named presets. ``linear_1000`` is the WaveGrad training schedule. The few-step lists of the public WaveGrad 2
# code end far from pure noise (keonlee's 6-step list reaches sqrt(alpha_bar) = 0.96, its 50-step one 0.53), so
# they cannot start from N(0, I); ours end at or below the training schedule's own floor (0.082) - tested.
# Better few-step schedules come from a search on validation items (models/tts/wavegrad2/schedule_search.py).
_PRESETS: Dict[str, Callable[[], torch.Tensor]] = {
    "linear_1000": lambda: linear_betas(1000, 1e-6, 0.01),
    "linear_50": lambda: linear_betas(50, 1e-4, 0.2),
    "fast_6": lambda: torch.tensor([1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.99]),
    "cosine_50": lambda: cosine_betas(50),
}


def named_schedule(name: str) -> torch.Tensor:
    """Betas of a preset (``linear_1000``, ``linear_50``, ``fast_6``, ``cosine_50``)."""
    if name not in _PRESETS:
        raise ValueError(f"unknown noise schedule {name!r}; known: {sorted(_PRESETS)}")
    return _PRESETS[name]()


def preset_names() -> List[str]:
    return sorted(_PRESETS)


@dataclass
class NoiseSchedule:
    """All per-step tables of one schedule (each ``(S,)`` float32, ``noise_levels`` ``(S+1,)``).

    Build with :meth:`from_betas`. ``noise_levels[k] = sqrt(alpha_bar_k)`` with ``noise_levels[0] = 1``.
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    noise_levels: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    posterior_log_variance: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor

    @classmethod
    def from_betas(cls, betas: Union[torch.Tensor, Sequence[float]],
                   precision: Literal["float64", "float32"] = "float64") -> "NoiseSchedule":
        """Tables of ``betas``, stored as float32.

        ``precision="float32"`` computes them in float32 in the order of the public WaveGrad code (bit-exact with
        its checkpoints' samplers); the default computes in float64 first. The difference matters for tiny betas:
        in float32 ``1 - (1 - 1e-6)`` is off by 1.3 %, so the last refinement step scales its output by 0.987
        instead of 1 with the 1000-step training schedule.
        """
        dtype = torch.float64 if precision == "float64" else torch.float32
        betas = torch.as_tensor(betas).to(torch.float32).flatten()
        if betas.numel() == 0:
            raise ValueError("noise schedule: empty list of betas")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"noise schedule: every beta must lie in (0, 1), got {betas.tolist()[:8]}...")
        b = betas.to(dtype)
        one = torch.ones(1, dtype=dtype)
        alphas = 1 - b
        cumprod = alphas.cumprod(dim=0)
        cumprod_prev = torch.cat([one, cumprod[:-1]])
        recip = (1.0 / cumprod).sqrt()
        variance = b * (1 - cumprod_prev) / (1 - cumprod)
        tables = dict(
            alphas=alphas, alphas_cumprod=cumprod, alphas_cumprod_prev=cumprod_prev,
            noise_levels=torch.cat([one, cumprod]).sqrt(), sqrt_alphas_cumprod=cumprod.sqrt(),
            sqrt_recip_alphas_cumprod=recip, sqrt_recipm1_alphas_cumprod=(1.0 - cumprod).sqrt() * recip,
            posterior_log_variance=variance.clamp(min=_VARIANCE_FLOOR).log(),
            posterior_mean_coef1=b * cumprod_prev.sqrt() / (1 - cumprod),
            posterior_mean_coef2=(1 - cumprod_prev) * alphas.sqrt() / (1 - cumprod),
        )  # fmt: skip
        return cls(betas=betas, **{k: v.to(torch.float32) for k, v in tables.items()})

    @property
    def steps(self) -> int:
        return int(self.betas.numel())

    def to(self, device: Union[str, torch.device]) -> "NoiseSchedule":
        return NoiseSchedule(**{k: v.to(device) for k, v in vars(self).items()})


def schedule_for_steps(steps: int, final_noise_level: float, beta_start: float = 1e-6, linear_from: int = 50) -> torch.Tensor:
    """Betas of a ``steps``-step schedule ending at ``sqrt(alpha_bar_S) = final_noise_level``.

    ``steps >= linear_from``: linear from ``beta_start * 1000 / steps`` (the training schedule's spacing, scaled);
    fewer steps: geometric from ``beta_start`` (few-step WaveGrad schedules grow by roughly a constant factor).
    The last beta is found by bisection. With ``steps=1000`` and the training floor this returns the training
    schedule to within float precision.
    """
    if steps < 1:
        raise ValueError(f"schedule_for_steps: steps must be >= 1, got {steps}")
    if not 0.0 < final_noise_level < 1.0:
        raise ValueError(f"schedule_for_steps: final noise level must lie in (0, 1), got {final_noise_level}")
    start = beta_start * 1000 / steps if steps >= linear_from else beta_start
    target = math.log(final_noise_level) * 2  # log alpha_bar_S

    def betas_for(end: float) -> torch.Tensor:
        if steps == 1:
            return torch.tensor([end], dtype=torch.float64)
        if steps >= linear_from:
            return torch.linspace(start, end, steps, dtype=torch.float64)
        return torch.logspace(math.log10(start), math.log10(end), steps, dtype=torch.float64)

    low, high = start, 1.0 - 1e-9
    for _ in range(200):  # log alpha_bar falls monotonically as the last beta grows
        mid = 0.5 * (low + high)
        if float(torch.log1p(-betas_for(mid)).sum()) > target:
            low = mid
        else:
            high = mid
    return betas_for(0.5 * (low + high)).to(torch.float32)


def resolve_schedule(spec: Union[str, Path, Sequence[float], torch.Tensor]) -> NoiseSchedule:
    """A schedule from a preset name, a schedule file (``*.json``) or an explicit list of betas."""
    if isinstance(spec, (list, tuple, torch.Tensor)):
        return NoiseSchedule.from_betas(spec)
    text = str(spec)
    if text.endswith(".json") or Path(text).is_file():
        return NoiseSchedule.from_betas(load_schedule(text))
    return NoiseSchedule.from_betas(named_schedule(text))


def save_schedule(path: Union[str, Path], betas: Sequence[float], **info: object) -> Path:
    """Write ``{"betas": [...], ...info}`` as JSON (atomically); :func:`load_schedule` reads it back."""
    betas = [float(b) for b in betas]
    NoiseSchedule.from_betas(betas)  # validates
    atomic_write_text(path, json.dumps({"betas": betas, **info}, indent=2) + "\n")
    return Path(path)


def load_schedule(path: Union[str, Path]) -> List[float]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"noise schedule file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        betas = [float(b) for b in data["betas"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a schedule file (expected JSON with a 'betas' list): {err}") from err
    NoiseSchedule.from_betas(betas)
    return betas


# --------------------------------------------------------------------------- training
def sample_continuous_noise_level(
    schedule: NoiseSchedule, steps: torch.Tensor, uniform: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Noise levels drawn uniformly between ``noise_levels[s]`` and ``noise_levels[s-1]`` (WaveGrad training).

    Args:
        steps: ``(B,)`` long, each in ``1..S``.
        uniform: optional ``(B,)`` draws in [0, 1) (else ``torch.rand`` with ``generator``).

    Returns:
        ``(B, 1)`` continuous ``sqrt(alpha_bar)``.
    """
    if bool(((steps < 1) | (steps > schedule.steps)).any()):
        raise ValueError(f"sample_continuous_noise_level: steps must lie in 1..{schedule.steps}")
    if uniform is None:
        uniform = torch.rand(steps.shape, generator=generator, device=steps.device)
    levels = schedule.noise_levels.to(steps.device)
    value = levels[steps - 1] * uniform + levels[steps] * (1.0 - uniform)
    return value.unsqueeze(-1)


def sample_training_noise_level(schedule: NoiseSchedule, batch: int, generator: Optional[torch.Generator] = None,
                                device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """``(B, 1)`` continuous noise levels: a step ``s ~ U{1..S}`` per item, then a level inside its interval."""
    steps = torch.randint(1, schedule.steps + 1, (batch,), generator=generator).to(device)
    uniform = torch.rand(batch, generator=generator).to(device)
    return sample_continuous_noise_level(schedule, steps, uniform)


def add_noise(y0: torch.Tensor, noise_level: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Forward process ``sqrt(a) * y0 + sqrt(1 - a) * eps`` with ``noise_level = sqrt(a)`` ``(B, 1)``, y0 ``(B, L)``."""
    return noise_level * y0 + (1.0 - noise_level**2).sqrt() * eps


# --------------------------------------------------------------------------- sampling
def posterior_step(
    schedule: NoiseSchedule, y: torch.Tensor, eps_pred: torch.Tensor, t: int, clip_denoised: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(B, L)`` and log-variance (scalar tensor) of ``p(y_{t-1} | y_t)`` given the predicted noise."""
    y0 = schedule.sqrt_recip_alphas_cumprod[t] * y - schedule.sqrt_recipm1_alphas_cumprod[t] * eps_pred
    if clip_denoised:
        y0 = y0.clamp(-1.0, 1.0)
    mean = schedule.posterior_mean_coef1[t] * y0 + schedule.posterior_mean_coef2[t] * y
    return mean, schedule.posterior_log_variance[t]


DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (y (B, L), noise_level (B, 1)) -> eps (B, L)


@torch.no_grad()
def refine(
    denoise: DenoiseFn,
    schedule: NoiseSchedule,
    y_T: torch.Tensor,
    step_noise: Optional[Sequence[torch.Tensor]] = None,
    generator: Optional[torch.Generator] = None,
    clip_denoised: bool = True,
    return_states: bool = False,
) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
    """Iterative refinement from ``y_T`` through every step of ``schedule`` (DDPM ancestral sampling).

    Args:
        denoise: the noise predictor ``eps(y, noise_level)``.
        y_T: ``(B, L)`` starting noise.
        step_noise: optional ``S`` tensors ``(B, L)`` used as the Gaussian draw of steps ``S-1 .. 0`` (the one of
            step 0 is ignored: the last step adds no noise). Else drawn with ``torch.randn(generator=...)`` in the
            same order (one per step with ``t > 0``).
        clip_denoised: clip the clean estimate to [-1, 1] at every step (WaveGrad 2 public code).

    Returns:
        ``y_0`` ``(B, L)``, or with ``return_states`` a dict ``states (S+1, B, L)``, ``means (S, B, L)``,
        ``log_variances (S,)``.
    """
    steps = schedule.steps
    if step_noise is not None and len(step_noise) != steps:
        raise ValueError(f"refine: {len(step_noise)} step_noise tensors for a {steps}-step schedule")
    sched = schedule.to(y_T.device)
    y = y_T
    states, means, logvars = [y], [], []
    for index, t in enumerate(range(steps - 1, -1, -1)):
        level = sched.noise_levels[t + 1].expand(y.size(0), 1)
        mean, logvar = posterior_step(sched, y, denoise(y, level), t, clip_denoised)
        if t > 0:
            if step_noise is not None:
                z = step_noise[index]
            else:  # drawn where the generator lives, then moved (a CPU generator drives a GPU run)
                device = generator.device if generator is not None else y.device
                z = torch.randn(y.shape, generator=generator, device=device).to(y)
            y = mean + z * (0.5 * logvar).exp()
        else:
            y = mean
        if return_states:
            states.append(y)
            means.append(mean)
            logvars.append(logvar)
    if not return_states:
        return y
    return {"states": torch.stack(states), "means": torch.stack(means), "log_variances": torch.stack(logvars)}
