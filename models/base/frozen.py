"""Frozen components: modules a model uses but does not train (an SSL model, a codec, a stage-1 encoder).

A trainer returns them from ``build_frozen()``; :class:`FrozenModules` keeps them in eval mode with gradients
off, moves each to the device once, and keeps them out of ``accelerator.prepare`` (so DDP never sees a
module without trainable parameters), out of the optimizers and out of the checkpoints. Where each came
from is recorded in every checkpoint's ``meta.json`` under ``frozen``::

    "frozen": {"ssl": {"kind": "hub", "id": "facebook/mms-300m"},
               "encoder": {"kind": "checkpoint", "path": "/exp/stage1/checkpoints/step_00010000",
                           "model": "generator", "step": 10000, "sha256": "…"}}

Declare the source with the helpers below (``from_hub``, ``from_local_dir``, ``from_pretrained_ref``,
``from_checkpoint``, ``built_from_code``, ``random_init``); a bare ``nn.Module`` counts as built from code.
A component may be ``lazy`` (built on first use), for weights that are only needed when features were not
precomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Union

import torch
from torch import nn

from models.base import checkpoint as ckpt


@dataclass
class FrozenComponent:
    """A frozen module (or a factory building it on first use) and where its weights came from."""

    module: Optional[nn.Module]
    source: Dict[str, Any] = field(default_factory=lambda: {"kind": "code"})
    factory: Optional[Callable[[], nn.Module]] = None

    def __post_init__(self) -> None:
        if (self.module is None) == (self.factory is None):
            raise ValueError("a frozen component needs exactly one of module and factory")

    @classmethod
    def lazy(cls, factory: Callable[[], nn.Module], source: Dict[str, Any]) -> "FrozenComponent":
        return cls(None, source, factory)


def built_from_code(module: nn.Module) -> FrozenComponent:
    """No external weights (e.g. a spectrogram front end)."""
    return FrozenComponent(module, {"kind": "code"})


def random_init(module: nn.Module, note: str) -> FrozenComponent:
    """Randomly initialised weights (tests, offline demos): ``note`` says how, e.g. the seed."""
    return FrozenComponent(module, {"kind": "random", "note": note})


def hub_source(hub_id: str, revision: Optional[str] = None) -> Dict[str, Any]:
    return {"kind": "hub", "id": hub_id, **({"revision": revision} if revision else {})}


def local_dir_source(path: str | Path) -> Dict[str, Any]:
    return {"kind": "local_dir", "path": str(Path(path).expanduser().resolve())}


def pretrained_source(ref: str) -> Dict[str, Any]:
    """A ``from_pretrained`` reference: a local directory if one exists there, else a hub id."""
    return local_dir_source(ref) if Path(ref).expanduser().is_dir() else hub_source(ref)


def from_hub(module: nn.Module, hub_id: str, revision: Optional[str] = None) -> FrozenComponent:
    return FrozenComponent(module, hub_source(hub_id, revision))


def from_local_dir(module: nn.Module, path: str | Path) -> FrozenComponent:
    return FrozenComponent(module, local_dir_source(path))


def from_pretrained_ref(module: nn.Module, ref: str) -> FrozenComponent:
    return FrozenComponent(module, pretrained_source(ref))


def from_checkpoint(
    path: str | Path, model: str, build: Callable[[Dict[str, Any]], nn.Module]
) -> FrozenComponent:
    """Model ``model`` of another Echelon checkpoint (a checkpoint, ``checkpoints/`` or experiment dir).

    ``build(config)`` makes the module from that checkpoint's resolved config (a plain dict); the weights
    are then loaded strictly. The source records the checkpoint dir, its step and the weights' sha256.
    """
    src = ckpt.resolve_checkpoint_dir(path)
    module = build(ckpt.read_config(src))
    ckpt.load_state_dict_strict(module, ckpt.load_model_weights(src, model),
                                f"frozen component from {src}: model {model!r} does not match the built module")
    recorded = ckpt.read_meta(src)
    files = recorded.get("files")
    weights = f"{model}.safetensors"
    sha = files[weights]["sha256"] if isinstance(files, dict) else ckpt.sha256_of(src / weights)  # recorded at save
    source = {"kind": "checkpoint", "path": str(src.resolve()), "model": model, "step": int(recorded["step"]),
              "sha256": sha}
    return FrozenComponent(module, source)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients, for good."""
    module.eval()
    module.requires_grad_(False)
    return module


class FrozenModules(Mapping[str, nn.Module]):
    """The trainer's frozen components by name; lazy ones are built, frozen and moved on first access."""

    def __init__(self, components: Mapping[str, Union[nn.Module, FrozenComponent]], device: torch.device):
        self.device = device
        self._components = {n: c if isinstance(c, FrozenComponent) else built_from_code(c)
                            for n, c in components.items()}  # fmt: skip
        self._modules: Dict[str, nn.Module] = {}
        for name, comp in self._components.items():
            if comp.module is not None:
                self._modules[name] = freeze(comp.module).to(device)

    def __getitem__(self, name: str) -> nn.Module:
        if name not in self._modules:
            comp = self._components[name]  # KeyError names the missing component
            self._modules[name] = freeze(comp.factory()).to(self.device)
        return self._modules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)

    def is_built(self, name: str) -> bool:
        return name in self._modules

    def sources(self) -> Dict[str, Dict[str, Any]]:
        """Provenance of every component, for ``meta.json``."""
        return {name: dict(comp.source) for name, comp in self._components.items()}
