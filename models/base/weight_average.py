"""An exponential moving average of a module's trained weights (:class:`WeightAverage`).

Why a fine-tuning run keeps one: on a minute of speech every GAN step moves the decoder's fine structure a little
this way and that; the average keeps what the steps agree on (the reader's timbre) and drops what they do not
(step-to-step jitter that Whisper hears as slurring and DNSMOS as noise). Measured on LibriSpeech reader 533
(issue 46, ``egs/tts/finetune/RESULTS.md``).
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator

import torch
from torch import nn


class WeightAverage:
    """``average = decay * average + (1 - decay) * weight`` after each :meth:`update`, over the parameters of
    ``module`` that require gradients when the average starts (the trained parts; frozen ones never move)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"a weight average's decay must lie between 0 and 1, got {decay}")
        self.module, self.decay = module, decay
        self.average: Dict[str, torch.Tensor] = {}

    def _trained(self) -> Dict[str, nn.Parameter]:
        params = dict(self.module.named_parameters())
        if self.average:
            return {name: params[name] for name in self.average}
        return {name: p for name, p in params.items() if p.requires_grad}

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average (the first call starts it at the current weights)."""
        params = self._trained()
        if not self.average:
            self.average = {name: p.detach().clone() for name, p in params.items()}
            return
        for name, p in params.items():
            self.average[name].lerp_(p.detach(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to_module(self) -> None:
        """Put the averaged weights into the module for good."""
        params = self._trained()
        for name, value in self.average.items():
            params[name].copy_(value)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the module inside the block, the trained ones back after it."""
        if not self.average:
            yield
            return
        params = self._trained()
        with torch.no_grad():
            live = {name: params[name].detach().clone() for name in self.average}
        self.copy_to_module()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in live.items():
                    params[name].copy_(value)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {name: value.clone() for name, value in self.average.items()}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore a saved average; its names must be parameters of the module with the same shapes."""
        params = dict(self.module.named_parameters())
        for name, value in state.items():
            if name not in params or params[name].shape != value.shape:
                raise ValueError(f"weight average: {name} is not a parameter of this shape in the module")
        self.average = {name: value.detach().clone().to(params[name].device) for name, value in state.items()}
