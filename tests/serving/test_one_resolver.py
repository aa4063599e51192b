"""One spec resolver (``models.base.pipeline.resolve``) for ``echelon-infer`` and ``echelon-serve``: every form
of model the CLI takes (a checkpoint dir, a spec, an official ``.pth`` with its model type, a model type alone, a
runner-only model, ``--component``, ``--backend onnxruntime``) is served, and answers as the CLI does."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import torch

from bins import infer as infer_cli
from models.base import checkpoint as ckpt
from models.base import pipeline as pl
from models.example.toy_autoencoder.config import ToyExperimentConfig
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from models.tts.hierspeechpp.checkpoint import save_official_checkpoint
from processors.audio import load_audio, save_audio
from serving.config import read_serve_config, single_model_config
from tests.serving.live import LiveServer, make_tiny_voice, read_wav, wav_bytes
from utils.config import ConfigError, to_dict
from utils.registry import RegistryError

HSP_SETTINGS = ["infer.random_ssl_dim=32", "infer.f0_method=dio"]


def make_toy_autoencoder(folder):
    """A runner-only model: the toy autoencoder, random weights (reconstruction = its forward pass)."""
    cfg = ToyExperimentConfig()
    torch.manual_seed(0)
    ckpt.save_checkpoint(folder / "checkpoints", 1, models={"autoencoder": ToyWaveAutoencoder.from_config(cfg.model)},
                         config=to_dict(cfg))
    return folder


def make_official_hsp(folder):
    """An official-format HierSpeech++ synthesizer ``.pth`` with its ``config.json`` (tiny random weights)."""
    from tests.models.hierspeechpp.test_vc_inference import _tiny_model

    model = _tiny_model(seed=5)
    path = folder / "G.pth"
    save_official_checkpoint(model, path)
    (folder / "config.json").write_text(json.dumps({
        "model": {k: v for k, v in to_dict(model.config).items() if k != "leaky_padding"},
        "data": {"filter_length": 1280, "hop_length": 320}}))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    return {"voice": make_tiny_voice(root / "voice"), "toy": make_toy_autoencoder(root / "toy"),
            "pth": make_official_hsp(root / "release"), "root": root}


def test_every_form_resolves_alike_for_the_cli_and_a_serve_config(models, tmp_path):
    voice, toy, pth = models["voice"], models["toy"], models["pth"]
    spec = tmp_path / "hsp.json5"
    spec.write_text(json.dumps({"pipeline": "hierspeechpp", "components": {"synthesizer": str(pth)},
                                "infer": {"noise_scale": 0.0}}))
    forms = {  # serve.json5 entry -> the same model as echelon-infer's arguments
        "dir": ({"pipeline": str(voice)}, (str(voice), None, [], [])),
        "spec": ({"pipeline": str(spec), "overrides": ["infer.noise_scale=0.5"]},
                 (str(spec), None, [], ["infer.noise_scale=0.5"])),
        "pth": ({"pipeline": str(pth), "model_type": "hierspeechpp", "overrides": HSP_SETTINGS},
                (str(pth), "hierspeechpp", [], HSP_SETTINGS)),
        "type_only": ({"model_type": "speechsr"}, (None, "speechsr", [], [])),
        "component": ({"model_type": "hierspeechpp", "components": {"synthesizer": str(pth)}},
                      (None, "hierspeechpp", [("synthesizer", str(pth))], [])),
        "runner": ({"pipeline": str(toy)}, (str(toy), None, [], [])),
    }
    (tmp_path / "serve.json5").write_text(json.dumps({"models": {k: entry for k, (entry, _) in forms.items()}}))
    served = read_serve_config(tmp_path / "serve.json5").models
    for name, (_, cli_args) in forms.items():
        entry = served[name]
        from_config = pl.resolve(entry.pipeline or None, entry.model_type or None, entry.components.items(),
                                 entry.overrides)
        assert from_config == pl.resolve(*cli_args), name
    assert pl.resolve(str(spec), overrides=["infer.noise_scale=0.5"]).spec.infer == {"noise_scale": 0.5}
    assert pl.resolve(str(pth), "hierspeechpp").spec.components == {"synthesizer": str(pth)}
    runner = pl.resolve(str(toy))
    assert runner.spec is None and runner.runner.__name__ == "ToyInference" and runner.checkpoint == str(toy)


def test_resolver_refusals_name_the_culprit(models, tmp_path):
    with pytest.raises(ConfigError, match=r"G\.pth is an official checkpoint file: .*--model_type"):
        pl.resolve(str(models["pth"]))
    with pytest.raises(RegistryError, match="no pipeline or runner named 'nope' .*runners: .*toy_autoencoder"):
        pl.resolve(None, "nope")
    with pytest.raises(ConfigError, match="'toy_autoencoder' has no pipeline settings or components"):
        pl.resolve(str(models["toy"]), overrides=["infer.noise_scale=0"])
    spec = tmp_path / "s.json5"
    spec.write_text(json.dumps({"pipeline": "speechsr"}))
    with pytest.raises(ConfigError, match="is a 'speechsr' pipeline spec, not 'vits'"):
        pl.resolve(str(spec), "vits")
    with pytest.raises(ckpt.CheckpointNotFoundError, match="not found: .*missing"):
        pl.resolve(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="'bad': expected NAME=PATH"):
        pl.component_pairs(["bad"])
    with pytest.raises(ConfigError, match="runs on torch only"):
        pl.load_resolved(pl.resolve(str(models["toy"])), backend="onnxruntime")
    with pytest.raises(ConfigError, match="needs .pipeline."):
        single_model_config()


@pytest.mark.slow
def test_server_serves_what_the_cli_takes(models, tmp_path):
    """One server with an official .pth (model type given), a voice on onnxruntime and a runner-only model: each
    answers, and equals echelon-infer's output for the same input."""
    root = models["root"]
    (root / "serve.json5").write_text(json.dumps({"models": {
        "official": {"pipeline": "release/G.pth", "model_type": "hierspeechpp", "overrides": HSP_SETTINGS},
        "voice_ort": {"pipeline": "voice", "backend": "onnxruntime"},
        "toy": {"pipeline": "toy"}}}))
    source = np.sin(2 * np.pi * 150 * np.arange(16000) / 16000).astype(np.float32) * 0.3
    save_audio(tmp_path / "src.wav", source, 16000)
    live = LiveServer(["--config", str(root / "serve.json5"), "--no_ui"], tmp_path / "server.log").wait_ready()
    try:
        listed = {m["id"]: m for m in httpx.get(live.url + "/v1/models").json()["data"]}
        assert {n: m["task"] for n, m in listed.items()} == {"official": "vc", "voice_ort": "tts", "toy": "process"}
        files = {"audio": ("src.wav", wav_bytes(source, 16000), "audio/wav")}
        processed = httpx.post(live.url + "/v1/audio/process", data={"model": "toy"}, files=files, timeout=60)
        assert processed.status_code == 200, processed.text
        served, rate = read_wav(processed.content)
        speech = httpx.post(live.url + "/v1/audio/speech", json={"model": "voice_ort", "input": "Hello there.",
                                                                  "voice": "bob", "seed": 3}, timeout=60)
        assert speech.status_code == 200, speech.text
        pair = {"source": ("src.wav", wav_bytes(source, 16000), "audio/wav"),
                "prompt": ("p.wav", wav_bytes(source[::-1].copy(), 16000), "audio/wav")}
        converted = httpx.post(live.url + "/v1/audio/conversion", data={"model": "official", "noise_scale": "0"},
                               files=pair, timeout=60)
        assert converted.status_code == 200, converted.text
        wrong = httpx.post(live.url + "/v1/audio/process", data={"model": "voice_ort"}, files=files, timeout=60)
        assert wrong.status_code == 422 and "is a tts model, not process" in wrong.json()["error"]["message"]
    finally:
        assert live.stop() == 0, live.output()
    out = tmp_path / "cli"
    assert infer_cli.main(["--ckpt_dir", str(root / "toy"), "--inputs", str(tmp_path / "src.wav"),
                           "--output_dir", str(out)]) == 0
    assert rate == 16000
    np.testing.assert_allclose(served, load_audio(out / "src.wav", None), atol=2 / 32768)
    ort = pl.load_pipeline(str(root / "voice"), backend="onnxruntime")
    expected = ort.synthesize(["Hello there."], speakers=["bob"], seed=3)[0]
    np.testing.assert_allclose(read_wav(speech.content)[0], expected.waveform, atol=2 / 32768)
    assert read_wav(converted.content)[0].shape == source.shape
