"""Stage 2 of the two-stage teaching example: a residual refiner in the latent space of a frozen stage 1.

Stage 1 is the toy waveform autoencoder (``models/example/toy_autoencoder``), trained on its own and then
used frozen: its encoder turns audio into a code, its decoder turns a code back into audio. The refiner
learns to change the code of band-limited audio (resampled to 16 kHz) so that the stage-1 decoder turns it
into the full-band original: stage 1 + refiner is a (toy) speech super-resolution system. See CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn

from models.base.building import BuiltFromConfig, build_model, config_of_arguments
from models.base.checkpoint import CheckpointError
from models.base.frozen import FrozenComponent, from_checkpoint
from models.example.toy_latent_sr.config import LatentRefinerConfig
from utils.registry import get, register

STAGE1_TYPE = "toy_autoencoder"  # registered name of the stage-1 model
STAGE1_MODEL = "autoencoder"  # its model name inside a stage-1 checkpoint


@register("model", "toy_latent_sr")
class LatentRefiner(BuiltFromConfig, nn.Module):
    """(B, C, F) stage-1 code of band-limited audio -> (B, C, F) refined code (a residual correction); built from a
    :class:`LatentRefinerConfig` (:func:`models.base.building.build_model`)."""

    config_class = LatentRefinerConfig

    def __init__(self, *, code_channels: int, hidden_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.config = config_of_arguments(LatentRefinerConfig, locals())
        pad = kernel_size // 2
        self.net = nn.Sequential(
            nn.Conv1d(code_channels, hidden_channels, kernel_size, padding=pad),
            nn.GELU(),
            nn.Conv1d(hidden_channels, hidden_channels, kernel_size, padding=pad),
            nn.GELU(),
            nn.Conv1d(hidden_channels, code_channels, kernel_size, padding=pad),
        )

        # zero last layer: an untrained refiner is the identity, so training starts from "no refinement"
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return code + self.net(code)


def stage1_component(path: str, code_channels: int) -> FrozenComponent:
    """The stage-1 autoencoder of checkpoint ``path`` as a frozen component (provenance: dir, step, sha256).

    Built through the registry from that checkpoint's own config: a model never imports another model's package.
    """

    def build(config: Dict[str, Any]) -> nn.Module:
        if config.get("model_type") != STAGE1_TYPE:
            raise CheckpointError(f"{path}: stage 1 must be a {STAGE1_TYPE!r} checkpoint, "
                                  f"got {config.get('model_type')!r}")  # fmt: skip
        if config["model"]["channels"] != code_channels:
            raise CheckpointError(f"{path}: stage 1 has {config['model']['channels']} code channels, "
                                  f"model.code_channels is {code_channels}")  # fmt: skip
        return build_model(get("model", STAGE1_TYPE), config["model"])

    if not path:
        raise CheckpointError("model.stage1_checkpoint is empty: train a toy_autoencoder first and give its dir")
    return from_checkpoint(path, STAGE1_MODEL, build)

