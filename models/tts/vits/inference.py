"""VITS inference: text -> speech (with a speaker for multi-speaker models) and voice conversion between speakers.

Python API::

    synth = VITSSynthesizer.from_echelon("exp/vits_vctk")                 # Echelon checkpoint / experiment dir
    synth = VITSSynthesizer.from_official("G_800000.pth", "config.json")  # jaywalnut310/vits files
    wavs = synth.synthesize(["Hello there."], speaker="p225")             # list of float32 arrays
    wav = synth.convert("source.wav", src_speaker="p225", tgt_speaker="p226")
    tts = load_pipeline("exp/vits_vctk")                                  # task API (pipeline "vits")
    tts.synthesize(["Hello there."], speakers=["p225"])[0]                # -> Audio

CLI (``bins/infer.py``)::

    echelon-infer --ckpt_dir exp/vits --text "Hello." --speaker p225 --output_dir out
    echelon-infer --ckpt_dir exp/vits --text_file lines.txt --output_dir out      # "utt_id|text" or plain lines
    echelon-infer --ckpt_dir exp/vits --vc_source a.wav --vc_src_speaker p225 --vc_tgt_speaker p226 --output_dir out
    echelon-infer --model_type vits --ckpt_dir pretrained_ljs.pth --text "Hi."   # official file + config.json beside it
    echelon-infer --ckpt_dir exp/vits --jobs jobs.jsonl --output_dir out     # per-line jobs (recipes)

A jobs file has one JSON object per line: ``{"id", "text", "speaker"?}`` is a TTS job; ``{"id", "path",
"source_speaker", "speaker"}`` a voice-conversion job (source file, its speaker, target speaker). Outputs are
``<output_dir>/<id>.wav`` (plain texts: ``tts_0000.wav``, ...). Texts longer than ``max_sentence_chars`` are
spoken sentence by sentence (bounded memory), joined with ``pause_seconds`` of silence (the loop of
:class:`models.base.sentence_tts.SentenceTTS`).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from models.base import checkpoint as ckpt
from models.base import onnx_backend
from models.base.inference import Item, file_items
from models.base.pipeline import PipelineMixin
from models.base.streaming import LatentWindows, windowed_decode
from models.base.task_inference import TextToSpeechInference, read_jsonl
from models.base.sentence_tts import SentenceSettings, SentenceTTS, Voice
from models.base.tasks import Audio, Capabilities
from models.base.text_split import front_end_ids
from models.tts.vits.checkpoint import load_official_generator
from models.tts.vits.config import (VITSConfig, VITSDataConfig, VITSExperimentConfig, data_from_official_config,
                                    from_official_config)
from models.tts.vits.model import FLOW_RECEPTIVE_FRAMES, VITS
from models.tts.vits.onnx_runtime import OnnxVITS, runtime_for_checkpoint, runtime_for_weights
from models.tts.vits.text import text_frontend
from processors.audio import AudioError, load_audio
from processors.data.manifest import model_speaker_id
from processors.spectrogram import VitsLinearSpectrogram
from processors.text.piper_phonemes import PiperPhonemeFrontend
from utils.config import validate
from utils.registry import register
from utils.rng import seeded

log = logging.getLogger(__name__)
Speaker = Union[int, str, None]


FLOW_CONTEXT_FRAMES = FLOW_RECEPTIVE_FRAMES  # windowed streaming: the flow's context on each side (32 frames)


class VITSSynthesizer:
    """A loaded VITS model with its front end (text ids, linear spectrogram) and speaker table."""

    def __init__(self, model: VITS, data: VITSDataConfig, device: str | torch.device = "cpu",
                 runtime: Optional[OnnxVITS] = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).prepare_for_inference()
        self.runtime = runtime  # exported graphs on onnxruntime (CPU), else None: torch runs ``model``
        self.backend = "onnxruntime" if runtime is not None else "torch"
        self.data = data
        self.sample_rate = data.sample_rate
        self.frontend = text_frontend(data)
        self.spectrogram = VitsLinearSpectrogram(data.filter_length, data.hop_length, data.win_length).to(self.device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_echelon(cls, ckpt_dir: str | Path, device: str = "cpu", backend: str = "torch") -> "VITSSynthesizer":
        path = ckpt.resolve_checkpoint_dir(ckpt_dir)
        cfg = validate(ckpt.expect_model_type(path, "vits"), VITSExperimentConfig)
        model = VITS.from_config(cfg.model)
        ckpt.load_state_dict_strict(model, ckpt.load_model_weights(path, "generator"), str(path))
        runtime = runtime_for_checkpoint(model, path) if onnx_backend.on_graphs(backend, device) else None
        return cls(model, cfg.data, device, runtime)

    @classmethod
    def from_official(cls, pth: str | Path, config_json: str | Path | None = None, device: str = "cpu",
                      backend: str = "torch") -> "VITSSynthesizer":
        """Official ``G_*.pth`` + its ``config.json`` (default: next to the checkpoint)."""
        config_json = Path(config_json) if config_json is not None else Path(pth).parent / "config.json"
        if not Path(pth).is_file():
            raise ckpt.CheckpointNotFoundError(f"checkpoint not found: {pth}")
        if not config_json.is_file():
            raise ckpt.CheckpointNotFoundError(f"official VITS config not found: {config_json} (pass it explicitly)")
        official = json.loads(config_json.read_text(encoding="utf-8"))
        model_cfg: VITSConfig = from_official_config(official)
        model = load_official_generator(pth, model_cfg)
        runtime = None
        if onnx_backend.on_graphs(backend, device):
            folder = onnx_backend.cached_graph_dir(Path(pth).parent, ckpt.sha256_of(pth))
            runtime = runtime_for_weights(model, folder)
        return cls(model, data_from_official_config(official), device, runtime)

    # ------------------------------------------------------------------ helpers
    def speaker_id(self, speaker: Speaker) -> Optional[torch.Tensor]:
        """Name (from ``data.speakers``) or integer id -> ``(1,)`` tensor; None for single-speaker models."""
        n = self.model.n_speakers
        sid = model_speaker_id(speaker, self.data.speakers, n, has_embedding=n > 1)
        return None if sid is None else torch.tensor([sid], device=self.device)

    def text_ids(self, text: str) -> List[int]:
        return front_end_ids(self.frontend, text)

    def text_sequences(self, text: str) -> List[List[int]]:
        """The id sequences ``text`` is spoken as: one, or on a Piper voice's front end one per sentence as
        espeak-ng ends them (the piper-tts runtime speaks sentence by sentence and joins the audio, no pause)."""
        if not isinstance(self.frontend, PiperPhonemeFrontend):
            return [self.text_ids(text)]
        from processors.text.frontend import TextError

        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        try:
            return self.frontend.sentence_ids(text)
        except TextError as err:
            raise TextError(f"the English front end cannot read this text: {text[:80]!r} ({err})") from err

    def batches(self, groups: Sequence[List[List[int]]],
                batch_size: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """The sequences of ``groups`` (one group per text) as padded ``(ids (B, T), lengths (B,))`` on the device:
        texts of one sequence in batches of ``batch_size``; if a text has several (a Piper voice's sentences),
        every sequence alone and in order, so that each draws what the streamed path and the onnxruntime backend
        (one item at a time) draw."""
        flat = [ids for group in groups for ids in group]
        size = batch_size if all(len(group) == 1 for group in groups) else 1
        for start in range(0, len(flat), size):
            chunk = flat[start:start + size]
            lengths = torch.tensor([len(c) for c in chunk], device=self.device)
            x = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long, device=self.device)
            for i, ids in enumerate(chunk):
                x[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            yield x, lengths

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def synthesize(
        self,
        texts: Sequence[str],
        speaker: Speaker = None,
        noise_scale: float = 0.667,
        noise_scale_w: float = 0.8,
        length_scale: float = 1.0,
        batch_size: int = 8,
        generator: Optional[torch.Generator] = None,
    ) -> List[np.ndarray]:
        """Texts -> float32 waveforms at ``self.sample_rate`` (one per text, batched internally; a text of several
        sequences, :meth:`text_sequences`, is their waveforms joined with no pause, as Piper joins sentences).
        The noise comes from ``generator`` (a CPU one) when given, else from torch's global generator."""
        sid = self.speaker_id(speaker)
        groups = [self.text_sequences(t) for t in texts]
        pieces: List[np.ndarray] = []
        for x, lengths in self.batches(groups, batch_size):
            out = (self.runtime or self.model).infer(x, lengths, sid=None if sid is None else sid.expand(len(x)),
                                   noise_scale=noise_scale, length_scale=length_scale, noise_scale_w=noise_scale_w,
                                   decode_per_item=True, generator=generator)
            for b in range(len(x)):
                pieces.append(out["wav"][b, 0, : int(out["lengths"][b])].float().cpu().numpy())
        wavs, start = [], 0
        for group in groups:
            wavs.append(pieces[start] if len(group) == 1 else np.concatenate(pieces[start:start + len(group)]))
            start += len(group)
        return wavs

    @torch.no_grad()
    def synthesize_windows(self, text: str, speaker: Speaker = None, noise_scale: float = 0.667,
                           noise_scale_w: float = 0.8, length_scale: float = 1.0, window_frames: int = 32,
                           context_frames: int = 16, max_window_frames: int = 256,
                           generator: Optional[torch.Generator] = None) -> Iterator[np.ndarray]:
        """One text -> its waveform in pieces: the prior sample is drawn whole (the same draws as
        :meth:`synthesize`), then the flow and the decoder run window by window, ``window_frames`` latent frames
        first, doubling up to ``max_window_frames`` (see ``models.base.streaming.windowed_decode``; the flow with
        :data:`FLOW_CONTEXT_FRAMES` of context); a text of several sequences, one sequence after the other."""
        sid = self.speaker_id(speaker)
        g = self.model.speaker_embedding(sid)
        for x, lengths in self.batches([self.text_sequences(text)], 1):
            out = self.model.infer(x, lengths, sid=sid, noise_scale=noise_scale, length_scale=length_scale,
                                   noise_scale_w=noise_scale_w, flow=False, generator=generator)
            yield from self._decode_windows(out["z_p"], out["y_mask"], g, window_frames, context_frames,
                                            max_window_frames)

    def _decode_windows(self, z_p: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor], window_frames: int,
                        context_frames: int, max_window_frames: int) -> Iterator[np.ndarray]:
        latent = LatentWindows.through(
            lambda a, b: self.model.flow(z_p[..., a:b], mask[..., a:b], g=g, reverse=True) * mask[..., a:b],
            z_p.size(-1), FLOW_CONTEXT_FRAMES)
        for wav in windowed_decode(lambda z: self.model.dec(z, g=g), latent, self.model.hop_length,
                                   window_frames, context_frames, max_window_frames):
            yield wav[0, 0].float().cpu().numpy()

    @torch.no_grad()
    def convert(self, source: Union[str, Path, np.ndarray], src_speaker: Speaker, tgt_speaker: Speaker,
                noise_scale: float = 1.0) -> np.ndarray:
        """Voice conversion of one utterance (file path or float waveform at ``sample_rate``)."""
        wav = load_audio(source, self.sample_rate) if isinstance(source, (str, Path)) else np.asarray(source, np.float32)
        min_len = self.data.filter_length
        if wav.shape[-1] < min_len:
            raise AudioError(f"source is shorter than one analysis window ({wav.shape[-1]} < {min_len} samples)")
        spec = self.spectrogram(torch.from_numpy(wav).float().to(self.device).unsqueeze(0))
        src, tgt = self.speaker_id(src_speaker), self.speaker_id(tgt_speaker)
        out = self.model.voice_conversion(spec, torch.tensor([spec.size(-1)], device=self.device), src, tgt,
                                          noise_scale=noise_scale)
        return out["wav"][0, 0].float().cpu().numpy()


def default_backend(device: str | torch.device) -> str:
    """onnxruntime on the CPU (faster there, same numbers: see models/tts/vits/README.md), torch elsewhere."""
    return "onnxruntime" if torch.device(device).type == "cpu" else "torch"


@dataclass
class VITSSettings(SentenceSettings):
    """Inference settings of the ``vits`` pipeline (the ``infer`` section / ``--set infer.KEY=VALUE``)."""

    noise_scale: float = 0.667  # prior temperature
    noise_scale_w: float = 0.8  # duration-predictor temperature
    length_scale: float = 1.0  # > 1 slower speech
    seed: int = 1234  # text k of a call draws from seed + 1000 k (models/base/sentence_tts.py)
    stream_window_frames: int = 32  # synthesize_stream's first window of a sentence (latent frames; 0 = whole)
    stream_max_window_frames: int = 256  # ... later windows double up to this many frames
    stream_context_frames: int = 16  # ... each with this many frames of context per side (0 = whole sentences)


@register("pipeline", "vits")
class VITSTextToSpeech(SentenceTTS, PipelineMixin):
    """TTS task API of VITS. Component ``model``: an Echelon ``vits`` checkpoint dir or an official ``G_*.pth``
    (+ config.json). Multi-speaker models take ``speakers`` (names from ``data.speakers`` or ids)."""

    task = "tts"
    settings_class = VITSSettings
    components = {"model": True}
    main_component = "model"
    backends = onnx_backend.BACKENDS

    def __init__(self, synth: VITSSynthesizer, settings: VITSSettings):
        self.synth = synth
        self.settings = settings
        self.sample_rate = synth.sample_rate

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: VITSSettings,
                        device: str = "cpu", backend: Optional[str] = None) -> "VITSTextToSpeech":
        path = Path(components["model"])
        backend = backend or default_backend(device)
        synth = VITSSynthesizer.from_official(path, device=device, backend=backend) if path.suffix == ".pth" else \
            VITSSynthesizer.from_echelon(path, device=device, backend=backend)
        return cls(synth, settings)

    @property
    def capabilities(self) -> Capabilities:
        names = tuple(self.synth.data.speakers) if self.synth.model.n_speakers > 1 else ()
        return Capabilities(tasks=frozenset({"tts"}), speakers=names)

    def voice(self, given: Voice) -> Speaker:
        self.synth.speaker_id(given.speaker)  # an unknown speaker fails before any synthesis
        return given.speaker

    @property
    def concurrent_calls(self) -> bool:  # type: ignore[override]
        """On the CPU every draw comes from the piece's own generator, so calls may run in several threads."""
        return self.synth.device.type == "cpu"

    def own_generator(self, generator: torch.Generator) -> Optional[torch.Generator]:
        """The piece's generator on the CPU (the same numbers as the global generator seeded alike); None on an
        accelerator, whose draws come from its global generator (seeded per piece by the base)."""
        return generator if self.synth.device.type == "cpu" else None

    def synthesize_piece(self, text: str, voice: Speaker, generator: torch.Generator) -> np.ndarray:
        s = self.settings
        return self.synth.synthesize([text], voice, s.noise_scale, s.noise_scale_w, s.length_scale,
                                     generator=self.own_generator(generator))[0]

    def piece_chunks(self, text: str, voice: Speaker, generator: torch.Generator,
                     streaming: bool) -> Iterator[np.ndarray]:  # fmt: skip
        """Streaming: a long sentence's flow and decoder run in windows (equal to the one-shot piece within 1e-4:
        float rounding on other shapes; ``stream_window_frames=0`` gives whole sentences, exactly equal)."""
        s = self.settings
        if not streaming or s.stream_window_frames <= 0:
            yield self.synthesize_piece(text, voice, generator)
            return
        yield from self.synth.synthesize_windows(text, voice, s.noise_scale, s.noise_scale_w, s.length_scale,
                                                 s.stream_window_frames, s.stream_context_frames,
                                                 s.stream_max_window_frames, self.own_generator(generator))


@register("inference", "vits")
class VITSInference(TextToSpeechInference):
    """``echelon-infer`` runner of VITS: the TTS inputs plus conversion between training speakers
    (``--vc_source`` + ``--vc_src_speaker``/``--vc_tgt_speaker``, or jobs with ``path`` + ``source_speaker``)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        TextToSpeechInference.add_arguments(parser)
        group = parser.add_argument_group("VITS voice conversion between training speakers")
        group.add_argument("--vc_source", nargs="+", action="extend", default=[], help="wavs to convert")
        group.add_argument("--vc_src_speaker", help="speaker of the --vc_source files")
        group.add_argument("--vc_tgt_speaker", help="target speaker of the conversion")

    def items(self, args: argparse.Namespace) -> List[Item]:
        items = super().items(args)
        target = args.vc_tgt_speaker if args.vc_tgt_speaker is not None else "tgt"
        for item in file_items(args.vc_source, tag=f"_to_{target}"):
            item.data = {"path": item.data, "source_speaker": args.vc_src_speaker, "speaker": args.vc_tgt_speaker}
            items.append(item)
        if args.jobs:
            for job in read_jsonl(args.jobs, ("id",)):
                if "source_speaker" in job and "path" in job:
                    items.append(Item(str(job["id"]), job, str(job["path"])))
        return items

    def process(self, item: Item) -> Audio:
        if "path" not in item.data:
            return super().process(item)
        d, synth = item.data, self.pipeline.synth
        with seeded(self.base_seed, synth.device):
            wav = synth.convert(d["path"], d["source_speaker"], d.get("speaker"), self.pipeline.settings.noise_scale)
        return Audio(wav, synth.sample_rate)
