"""Weight normalisation with the checkpoint names of the original VITS/HiFi-GAN/BigVGAN code.

Official HierSpeech++ and VITS checkpoints store weight-normed layers as ``<name>_g`` and ``<name>_v``
(``weight = g * v / ||v||``, the norm taken over every dim except ``dim``).  PyTorch's newer
``parametrizations.weight_norm`` renames them to ``parametrizations.weight.original0/1``, and its legacy
function is deprecated; this small re-implementation keeps the legacy names so official files load
strictly, and :func:`fold_weight_norm` bakes the weights for fast inference.

Note the ConvTranspose case: dim 0 of its weight is the *input* channel, so ``weight_g`` is ``(in, 1, 1)``.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm_except(v: torch.Tensor, dim: int) -> torch.Tensor:
    dims = [d for d in range(v.dim()) if d != dim]
    return v.norm(p=2, dim=dims, keepdim=True)


class _WeightNormHook:
    def __init__(self, name: str, dim: int):
        self.name = name
        self.dim = dim

    def compute(self, module: nn.Module) -> torch.Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except(v, self.dim))

    def __call__(self, module: nn.Module, inputs) -> None:
        setattr(module, self.name, self.compute(module))


def weight_norm(module: nn.Module, name: str = "weight", dim: int = 0) -> nn.Module:
    """Re-parametrise ``module.<name>`` as ``<name>_g`` (magnitude) and ``<name>_v`` (direction)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, _WeightNormHook) and hook.name == name:
            raise RuntimeError(f"weight norm already applied to {name} of {module.__class__.__name__}")
    weight = getattr(module, name)
    del module._parameters[name]
    module.register_parameter(name + "_g", nn.Parameter(_norm_except(weight, dim).detach().clone()))
    module.register_parameter(name + "_v", nn.Parameter(weight.detach().clone()))
    hook = _WeightNormHook(name, dim)
    setattr(module, name, hook.compute(module))
    module.register_forward_pre_hook(hook)
    return module


def has_weight_norm(module: nn.Module) -> bool:
    return any(isinstance(h, _WeightNormHook) for h in module._forward_pre_hooks.values())


def remove_weight_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Replace ``<name>_g``/``<name>_v`` by the plain weight they define (inference speed-up)."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, _WeightNormHook) and hook.name == name:
            with torch.no_grad():
                weight = hook.compute(module)
            delattr(module, name)
            del module._parameters[name + "_g"]
            del module._parameters[name + "_v"]
            module.register_parameter(name, nn.Parameter(weight.detach()))
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"{module.__class__.__name__} has no weight norm on {name!r}")


def fold_weight_norm(model: nn.Module) -> int:
    """Fold every weight norm inside ``model``; returns how many layers were folded."""
    count = 0
    for sub in model.modules():
        for hook in [h for h in sub._forward_pre_hooks.values() if isinstance(h, _WeightNormHook)]:
            remove_weight_norm(sub, hook.name)
            count += 1
    return count


@torch.no_grad()
def move_towards(module: nn.Module, anchor: nn.Module, weight: float) -> None:
    """Put ``anchor + weight * (module - anchor)`` into ``module``'s parameters (0: ``anchor``'s weights, 1:
    unchanged); both must be built alike. A weight-normed layer moves its effective weight ``g * v / ||v||``
    and is re-expressed as ``g`` and ``v``: ``v`` is only a direction, so moving it apart from ``g`` would
    not land between the two layers."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"an interpolation weight lies between 0 and 1, got {weight}")
    if len(list(module.modules())) != len(list(anchor.modules())):
        raise ValueError("move_towards: the two modules are not built alike")
    for mine, theirs in zip(module.modules(), anchor.modules()):
        hooks = [h for h in mine._forward_pre_hooks.values() if isinstance(h, _WeightNormHook)]
        normed = {h.name + suffix for h in hooks for suffix in ("_g", "_v")}
        other = dict(theirs.named_parameters(recurse=False))
        for name, param in mine.named_parameters(recurse=False):
            if name not in other or other[name].shape != param.shape:
                raise ValueError(f"move_towards: {type(mine).__name__}.{name} has no counterpart of its shape")
            if name not in normed:
                param.lerp_(other[name], 1.0 - weight)
        for hook in hooks:
            moved = torch.lerp(hook.compute(theirs), hook.compute(mine), weight)
            getattr(mine, hook.name + "_v").copy_(moved)
            getattr(mine, hook.name + "_g").copy_(_norm_except(moved, hook.dim))
            setattr(mine, hook.name, hook.compute(mine))
