"""PLUMBING ONLY: ``echelon-finetune``'s ``hierspeechpp`` finetuner end to end on TINY RANDOM weights.

The synthesizer (``train_tiny.json5`` sizes), its SSL model (a random tiny wav2vec 2.0) and the source voice
that reads the held-out sentences (a tiny VITS) are all randomly initialised: the audio is meaningless and no
quality figure comes from here (official HierSpeech++ weights and MMS-300m are not reachable). What is checked
is that the calls ``echelon-finetune`` makes happen in order on real clips of one VCTK speaker: routing by the
base checkpoint's model_type, prepare_base, speak before and during training, train (on_eval every step),
save_voice, export; that only the trained parts move; and that the saved voice converts through
``load_pipeline`` exactly as the finetuner spoke. Also: the official ``.pth`` base loads, and an unreachable
SSL model or a missing source voice is a one-line error before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile as sf
import torch

from models.base import checkpoint as ckpt
from models.base.finetune import FinetuneBudget, FinetuneError, finetuner_for
from models.base.pipeline import load_pipeline
from models.base.tasks import Audio
from models.tts.hierspeechpp.checkpoint import save_official_checkpoint
from models.tts.hierspeechpp.config import HierSpeechExperimentConfig
from models.tts.hierspeechpp.finetune import (SOURCE_VOICE_ENV, TTV_ENV, HierSpeechFinetuner, load_base)
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.model import VITS
from processors.audio import load_audio
from tests.helpers import MINI_CORPUS, REPO_ROOT
from utils.config import load_config, to_dict, validate

pytest.importorskip("parselmouth")

TINY_SYNTH = REPO_ROOT / "models" / "tts" / "hierspeechpp" / "configs" / "train_tiny.json5"
TINY_VITS = REPO_ROOT / "models" / "tts" / "vits" / "configs" / "tiny.json5"
READER = ["p225_003", "p225_008", "p225_011", "p225_016"]  # one VCTK speaker, 16 kHz
CLIP_SECONDS = (1.2, 1.6, 1.4, 1.8)  # the longest (p225_016) is the prompt
TEXTS = ["The army found the people.", "Thus did this father comfort her?"]
TRAINED, FROZEN = ("dec", "sn", "flow"), ("enc_q", "enc_p", "enc_p_l", "flow_l", "emb_g", "mel_decoder", "emb")


def tiny_synthesizer(root: Path) -> HierSpeechPPSynthesizer:
    """A random tiny synthesizer saved as an Echelon ``hierspeechpp`` checkpoint (random tiny SSL in data.ssl)."""
    cfg = validate(load_config(TINY_SYNTH), HierSpeechExperimentConfig)
    torch.manual_seed(0)
    model = HierSpeechPPSynthesizer.from_config(cfg.model)
    ckpt.save_checkpoint(root / "checkpoints", 0, models={"generator": model}, config=to_dict(cfg))
    return model


def tiny_source_voice(root: Path) -> Path:
    raw = load_config(TINY_VITS)
    raw["model"].update(n_speakers=0, gin_channels=0)
    raw["data"]["speakers"] = []
    cfg = validate(raw, VITSExperimentConfig)
    torch.manual_seed(1)
    ckpt.save_checkpoint(root / "checkpoints", 0, models={"generator": VITS.from_config(cfg.model)},
                         config=to_dict(cfg))
    return root


def reader_manifest(data_dir: Path) -> Path:
    """Where echelon-finetune writes the reader's utterances: ``EXP/data/train.jsonl`` + wavs."""
    (data_dir / "wavs").mkdir(parents=True)
    rows = []
    for name, seconds in zip(READER, CLIP_SECONDS):
        wav = load_audio(MINI_CORPUS / "vctk" / "p225" / f"{name}.wav", 16000)[4000:4000 + int(seconds * 16000)]
        sf.write(data_dir / "wavs" / f"{name}.wav", wav, 16000)
        rows.append({"id": name, "path": f"wavs/{name}.wav", "text": "", "duration": seconds, "sample_rate": 16000})
    manifest = data_dir / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


def part_state(state: Dict[str, torch.Tensor], part: str) -> Dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(part + ".")}


def test_finetune_calls_train_the_chosen_parts_and_save_a_loadable_voice(tmp_path, monkeypatch) -> None:
    base_model = tiny_synthesizer(tmp_path / "base")
    before = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
    exp = tmp_path / "exp"
    manifest = reader_manifest(exp / "data")
    voice_source = tiny_source_voice(tmp_path / "source_voice")
    monkeypatch.setenv(SOURCE_VOICE_ENV, str(voice_source))
    monkeypatch.delenv(TTV_ENV, raising=False)

    finetuner = finetuner_for(tmp_path / "base", exp)  # found through the registry by model_type
    assert isinstance(finetuner, HierSpeechFinetuner) and finetuner.sample_rate == 16000
    report = finetuner.prepare_base(tmp_path / "cache")
    assert str(voice_source) in report["held-out speech"] and "Echelon checkpoint" in report["synthesizer"]

    base_row = finetuner.speak(TEXTS, seed=3)
    sources = finetuner.source_speech(TEXTS, 1.0, 3)
    for (wav, rate), source in zip(base_row, sources):
        assert rate == 16000 and wav.shape == source.shape and np.isfinite(wav).all() and np.abs(wav).max() > 0
    slower = finetuner.source_speech(TEXTS[:1], 1.5, 3)[0]
    assert slower.size > 1.3 * sources[0].size  # tempo reaches the source voice's duration scale

    calls: List[int] = []
    during: List[np.ndarray] = []

    def on_eval(step: int, cpu_minutes: float) -> None:  # what finetune/run.py's Evaluator does, in small
        calls.append(step)
        assert cpu_minutes > 0
        if step == 2:
            during.extend(wav for wav, _ in finetuner.speak(TEXTS, seed=3))
            finetuner.save_voice(exp / "voice", 1.2)

    result = finetuner.train(manifest, FinetuneBudget(cpu_minutes=None, max_steps=2, eval_every=1), on_eval,
                             resume=False, progress=False)
    assert calls == [1, 2] and result.step == 2 and result.stopped_by == "max steps"
    assert set(result.details["frozen_parts"]) == set(FROZEN)

    after = finetuner.current_model().state_dict()
    for part in TRAINED:
        moved = [k for k, v in part_state(after, part).items() if not torch.equal(v, before[k])]
        assert moved, f"{part} was not trained"
    for part in FROZEN:
        assert all(torch.equal(v, before[k]) for k, v in part_state(after, part).items()), f"{part} moved"
    assert any(not np.array_equal(a, b) for a, (b, _) in zip(during, base_row))  # speak uses the current weights

    voice = ckpt.resolve_checkpoint_dir(exp / "voice")
    saved = ckpt.load_model_weights(voice, "generator")
    assert all(torch.equal(saved[k], v) for k, v in after.items())
    assert ckpt.read_meta(voice)["finetune"]["step"] == 2
    vc = load_pipeline(exp / "voice")  # echelon-infer --ckpt_dir EXP/voice
    converted = vc.convert([Audio(sources[0], 16000)], [exp / "voice" / "prompt.wav"], seed=3)[0]
    assert converted.sample_rate == 16000 and converted.waveform.shape == sources[0].shape
    assert float(np.abs(converted.waveform - during[0]).max()) < 1e-4  # the voice speaks as the finetuner did

    (onnx_path,) = finetuner.export(exp / "voice", exp / "voice.onnx")
    import onnxruntime

    names = {i.name for i in onnxruntime.InferenceSession(str(onnx_path)).get_inputs()}
    assert names == {"ssl", "log_f0", "prompt_mel", "noise", "noise_scale"}


def test_official_base_loads_and_unreachable_inputs_are_one_line_errors(tmp_path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_hub_cache"))
    monkeypatch.delenv(SOURCE_VOICE_ENV, raising=False)
    monkeypatch.delenv(TTV_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no exp/joe here
    model = tiny_synthesizer(tmp_path / "base")
    official = tmp_path / "official" / "hierspeechpp_tiny.pth"
    official.parent.mkdir()
    save_official_checkpoint(model, official)
    (official.parent / "config.json").write_text(json.dumps({"model": to_dict(model.config)}), encoding="utf-8")

    loaded, cfg, kind = load_base(official)
    assert kind == "official checkpoint" and cfg.data.ssl.model == "facebook/mms-300m"
    loaded_state = loaded.state_dict()
    assert all(torch.equal(loaded_state[k], v) for k, v in model.state_dict().items())
    with pytest.raises(FinetuneError, match="facebook/mms-300m") as err:  # the real SSL model, not cached
        HierSpeechFinetuner(official, tmp_path / "exp", source_voice=tmp_path)
    assert "\n" not in str(err.value) and "huggingface-cli download" in str(err.value)
    with pytest.raises(FinetuneError, match="echelon-convert-piper joe") as err:
        HierSpeechFinetuner(tmp_path / "base", tmp_path / "exp")
    assert "\n" not in str(err.value)


def test_with_a_ttv_the_voice_speaks_text_through_the_tts_pipeline(tmp_path, monkeypatch) -> None:
    """PLUMBING ONLY (tiny random TTV and synthesizer): with a TTV the held-out sentences are read from text by
    ``hierspeechpp_tts`` with the current synthesizer, and the saved voice carries that pipeline at the tempo."""
    from models.ttv.hierspeechpp_ttv.model import TextToVec

    monkeypatch.delenv(SOURCE_VOICE_ENV, raising=False)
    tiny_synthesizer(tmp_path / "base")
    torch.manual_seed(2)
    ttv = TextToVec.from_config(dict(inter_channels=16, hidden_channels=16, ssl_channels=32))
    ckpt.save_checkpoint(tmp_path / "ttv" / "checkpoints", 0, models={"ttv": ttv},
                         config={"model_type": "hierspeechpp_ttv", "model": to_dict(ttv.config)})
    exp = tmp_path / "exp"
    reader_manifest(exp / "data")
    finetuner = HierSpeechFinetuner(tmp_path / "base", exp, ttv=tmp_path / "ttv")
    assert "hierspeechpp_tts" in finetuner.prepare_base(tmp_path / "cache")["held-out speech"]

    normal, slower = finetuner.speak(TEXTS[:1], 1.0, seed=5)[0], finetuner.speak(TEXTS[:1], 1.5, seed=5)[0]
    assert normal[1] == slower[1] == 16000 and np.isfinite(normal[0]).all()
    assert slower[0].size > 1.3 * normal[0].size  # tempo reaches the TTV's duration scale

    finetuner.save_voice(exp / "voice", 1.5)
    spec = json.loads((exp / "voice" / "tts.json5").read_text(encoding="utf-8"))
    assert spec["infer"] == {"length_scale": 1.5} and spec["components"]["synthesizer"] == "."
    tts = load_pipeline(exp / "voice" / "tts.json5")
    again = tts.synthesize(TEXTS[:1], prompts=[exp / "voice" / "prompt.wav"], seed=5)[0]
    assert float(np.abs(again.waveform - slower[0]).max()) < 1e-4
