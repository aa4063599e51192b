"""The two-stage example as a pipeline: ``stage1`` (toy autoencoder) + ``refiner`` (stage 2) = toy speech SR.

A spec names both checkpoints (relative paths are relative to the spec file)::

    {
      pipeline: "toy_latent_sr",
      components: { stage1: "exp/stage1", refiner: "exp/stage2" },
      infer: { input_rate: 8000 },
    }

``echelon-infer --pipeline spec.json5 --inputs a.wav b.wav --output_dir out`` then runs the generic SR runner
(``models/base/task_inference.py``). Inputs are read at ``input_rate`` (band-limited), brought to the output
rate, encoded by stage 1, refined and decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from models.base import checkpoint as ckpt
from models.base.infer_settings import InferSettings
from models.base.pipeline import PipelineMixin
from models.base.tasks import Audio, AudioInput, Capabilities, SpeechSuperResolution, load_input
from models.example.toy_latent_sr.model import LatentRefiner, stage1_component
from models.example.toy_latent_sr.config import LatentSRExperimentConfig
from processors.audio import resample
from utils.config import validate
from utils.registry import register


@dataclass
class LatentSRSettings(InferSettings):
    input_rate: Optional[int] = None  # inputs are band-limited to this rate; default: the refiner's data.low_rate


@register("pipeline", "toy_latent_sr")
class ToyLatentSR(SpeechSuperResolution, PipelineMixin):
    """Task API: speech -> ``sample_rate`` speech through a frozen stage-1 codec and a trained refiner."""

    task = "sr"
    settings_class = LatentSRSettings
    components = {"stage1": True, "refiner": True}  # name -> required
    main_component = "refiner"

    def __init__(self, stage1: torch.nn.Module, refiner: LatentRefiner, sample_rate: int, input_rate: int,
                 settings: LatentSRSettings, device: str = "cpu"):  # fmt: skip
        self.stage1 = stage1.eval().to(device)
        self.refiner = refiner.eval().to(device)
        self.sample_rate = sample_rate
        self.input_rate = input_rate
        self.settings = settings
        self.device = device

    @classmethod
    def from_components(cls, components, settings: LatentSRSettings, device: str = "cpu") -> "ToyLatentSR":
        refiner_dir = ckpt.resolve_checkpoint_dir(components["refiner"])
        cfg = validate(ckpt.expect_model_type(refiner_dir, "toy_latent_sr"), LatentSRExperimentConfig)
        m = cfg.model
        refiner = LatentRefiner.from_config(m)
        refiner.load_state_dict(ckpt.load_model_weights(refiner_dir, "refiner"), strict=True)
        stage1 = stage1_component(components["stage1"], m.code_channels)
        # the refiner only makes sense on the codes of the very stage 1 it was trained with
        trained_with = ckpt.read_meta(refiner_dir).get("frozen", {}).get("stage1", {}).get("sha256")
        if trained_with != stage1.source["sha256"]:
            raise ckpt.CheckpointError(f"components.stage1 {components['stage1']}: not the stage 1 that "
                                       f"{refiner_dir} was trained with (autoencoder sha256 differs)")  # fmt: skip
        input_rate = settings.input_rate if settings.input_rate is not None else cfg.data.low_rate
        return cls(stage1.module, refiner, cfg.data.sample_rate, input_rate, settings, device)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tasks=frozenset({"sr"}))

    @torch.no_grad()
    def upsample(self, waveforms: Sequence[AudioInput], seed: Optional[int] = None) -> List[Audio]:
        outputs = []
        for item in waveforms:
            low = load_input(item, self.input_rate).waveform
            if low.size == 0:
                raise ValueError(f"{item}: empty audio")
            wav = torch.from_numpy(resample(low, self.input_rate, self.sample_rate)).to(self.device)
            code = self.refiner(self.stage1.encode(wav.view(1, 1, -1)))
            out = self.stage1.decode(code, wav.shape[-1]).view(-1).clamp(-1, 1)
            outputs.append(Audio(out.cpu().numpy(), self.sample_rate))
        return outputs
