"""VITS -> ONNX: Piper's graph interface equals the torch path at zero noise (three lengths, single- and
multi-speaker, stochastic and deterministic duration predictors), the voice config and sherpa-onnx metadata,
the onnxruntime backend of the task API (seeded outputs equal torch's), ``echelon-export`` / ``echelon-infer
--backend``, and the converted joe voice exported again equals Piper's own file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch

from bins import export as export_cli
from bins import infer as infer_cli
from models.base import checkpoint as ckpt
from models.base import onnx_backend
from models.base.pipeline import load_pipeline
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.model import VITS
from models.tts.vits.onnx_export import export_checkpoint
from models.tts.vits.piper import convert_piper, installed_voice
from utils.config import load_config, to_dict, validate

TINY = Path(__file__).parents[3] / "models" / "tts" / "vits" / "configs" / "tiny.json5"
LENGTHS = (3, 17, 60)
ZERO_NOISE = np.array([0.0, 1.0, 0.0], dtype=np.float32)


def tiny_checkpoint(root: Path, data: dict | None = None, **model_overrides) -> Path:
    """The tiny config with ``model_overrides`` (and ``data`` overrides), random weights (seed 0), saved."""
    raw = load_config(TINY)
    raw["model"].update(model_overrides)
    raw["data"].update(data or {})
    if raw["model"].get("n_speakers", 0) <= 1:
        raw["data"]["speakers"] = []
    cfg = validate(raw, VITSExperimentConfig)
    torch.manual_seed(0)
    model = VITS.from_config(cfg.model)
    ckpt.save_checkpoint(root / "checkpoints", 0, models={"generator": model}, config=to_dict(cfg))
    return root


def torch_waveform(model: VITS, ids: torch.Tensor, sid: int | None) -> np.ndarray:
    with torch.no_grad():
        out = model.infer(ids, torch.tensor([ids.size(1)]), sid=None if sid is None else torch.tensor([sid]),
                          noise_scale=0.0, noise_scale_w=0.0)
    return out["wav"].reshape(-1).numpy()


def run_piper_graph(path: Path, ids: torch.Tensor, sid: int | None = None, scales=ZERO_NOISE) -> np.ndarray:
    feeds = {"input": ids.numpy().astype(np.int64), "input_lengths": np.array([ids.size(1)], dtype=np.int64),
             "scales": scales}
    if sid is not None:
        feeds["sid"] = np.array([sid], dtype=np.int64)
    return onnx_backend.session(path, threads=1).run(None, feeds)[0]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vits_onnx")
    return {"multi": tiny_checkpoint(root / "multi"),
            "single_dp": tiny_checkpoint(root / "single_dp", n_speakers=0, gin_channels=0, use_sdp=False)}


@pytest.fixture(scope="module")
def multi_graph(tiny_dirs, tmp_path_factory) -> Path:
    return export_checkpoint(tiny_dirs["multi"], tmp_path_factory.mktemp("graph") / "v.onnx")[0]


@pytest.mark.parametrize("kind, sid", [("multi", 2), ("single_dp", None)])
def test_piper_graph_equals_torch_at_zero_noise_for_three_lengths(tiny_dirs, tmp_path, kind, sid) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "voice.onnx"
    written = export_checkpoint(tiny_dirs[kind], out)
    assert [p.name for p in written] == ["voice.onnx", "voice.onnx.json", "tokens.txt"]
    model = load_pipeline(tiny_dirs[kind], backend="torch").synth.model
    generator = torch.Generator().manual_seed(1)
    for length in LENGTHS:  # the graph is traced once; every length runs through it
        ids = torch.randint(1, model.enc_p.emb.num_embeddings, (1, length), generator=generator)
        ours, reference = run_piper_graph(out, ids, sid), torch_waveform(model, ids, sid)
        assert ours.shape == (1, 1, 1, reference.size) and reference.size > 0
        assert np.abs(ours.reshape(-1) - reference).max() <= 1e-4
    names = [i.name for i in onnx.load(str(out)).graph.input]
    assert names == ["input", "input_lengths", "scales"] + (["sid"] if sid is not None else [])


@pytest.mark.parametrize("stage_channels, stage", [(64, 0), (8, 1)])
def test_piper_graph_decodes_long_utterances_in_windows_exactly(tiny_dirs, tmp_path, monkeypatch, stage_channels,
                                                                 stage) -> None:
    # the Piper-interface graph decodes long utterances with the decoder's tail as two time windows on the batch
    # axis (onnxruntime's blocked convolutions then use a second thread); the tiny voice's utterances are short,
    # so windows from 1 frame, and its stages have 16, 8 and 4 channels, so the cut is moved to reach stage 1
    from models.tts.vits import onnx_export

    torch.set_num_threads(1)
    monkeypatch.setattr(onnx_export, "WINDOW_MIN_FRAMES", 1)
    monkeypatch.setattr(onnx_export, "WINDOW_STAGE_CHANNELS", stage_channels)
    out = tmp_path / "windows.onnx"
    export_checkpoint(tiny_dirs["multi"], out)
    model = load_pipeline(tiny_dirs["multi"], backend="torch").synth.model
    assert onnx_export.window_cut(model.dec) == (stage, model.dec.tail_reach(stage))
    halo, rate, samples_seen = model.dec.tail_reach(stage), model.dec.stage_rate(stage), []
    generator = torch.Generator().manual_seed(2)
    for length in LENGTHS + (90,):
        ids = torch.randint(1, model.enc_p.emb.num_embeddings, (1, length), generator=generator)
        ours, reference = run_piper_graph(out, ids, 2), torch_waveform(model, ids, 2)
        assert ours.shape == (1, 1, 1, reference.size)
        assert np.abs(ours.reshape(-1) - reference).max() <= 1e-4
        samples_seen.append(reference.size // model.hop_length * rate)
    assert max(samples_seen) > 2 * halo + 2  # windows narrower than the utterance were really taken


def test_noise_scales_reach_the_graph(multi_graph) -> None:
    out = multi_graph
    ids = torch.arange(1, 12).unsqueeze(0)
    quiet = run_piper_graph(out, ids, 0)
    noisy = run_piper_graph(out, ids, 0, np.array([0.667, 1.0, 0.0], dtype=np.float32))
    slow = run_piper_graph(out, ids, 0, np.array([0.0, 2.0, 0.0], dtype=np.float32))
    assert noisy.shape == quiet.shape and np.abs(noisy - quiet).max() > 1e-3
    assert slow.shape[-1] > 1.5 * quiet.shape[-1]
    other = run_piper_graph(out, ids, 3)
    assert other.shape != quiet.shape or np.abs(other - quiet).max() > 1e-4


def test_decoder_layout_identities_are_found_and_stay_float_in_int8(multi_graph, tmp_path) -> None:
    """The decoder's stages of >= 8 channels (tiny: 16 and 8; the 4-channel one stays 1-D) carry LayoutIdentity
    convolutions: one behind each transposed convolution, one per residual unit's input activation (ResBlock1:
    2 kernel sizes x 3 dilations), less one per stage: both blocks start from the stage's input with the same
    activation, which the exporter computes once. int8 quantisation finds them and leaves them in float (exact there; int8 would only
    add error); every other convolution it quantises."""
    graph = onnx.load(str(multi_graph)).graph
    found = onnx_backend.layout_identities(graph)
    assert len(found) == 2 * (1 + 2 * 3 - 1), found
    quantised = onnx_backend.quantize_int8(Path(shutil.copy(multi_graph, tmp_path / "q.onnx")))
    nodes = onnx.load(str(quantised)).graph.node
    float_convs = {n.name for n in nodes if n.op_type == "Conv"}
    assert set(found) <= float_convs and any(n.op_type == "ConvInteger" for n in nodes)
    ids = torch.arange(1, 12).unsqueeze(0)
    feeds = {"input": ids.numpy(), "input_lengths": np.array([11]), "scales": ZERO_NOISE, "sid": np.array([1])}
    assert np.isfinite(onnx_backend.session(quantised, threads=1).run(None, feeds)[0]).all()


def test_voice_json_and_sherpa_metadata(tiny_dirs, multi_graph) -> None:
    out = multi_graph
    voice = json.loads(Path(str(out) + ".json").read_text())
    cfg = validate(ckpt.read_config(ckpt.resolve_checkpoint_dir(tiny_dirs["multi"])), VITSExperimentConfig)
    assert voice["audio"]["sample_rate"] == 16000 and voice["espeak"]["voice"] == "en-us"
    assert voice["num_speakers"] == 4 and voice["speaker_id_map"] == {n: i for i, n in enumerate(cfg.data.speakers)}
    assert voice["num_symbols"] == 178 and voice["phoneme_id_map"]["_"] == [0]
    assert voice["inference"] == {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["model_type"] == "vits" and meta["comment"] == "piper" and meta["n_speakers"] == "4"
    assert meta["sample_rate"] == "16000"
    tokens = (out.parent / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert len(tokens) == len([ids for ids in voice["phoneme_id_map"].values() if ids]) and tokens[0] == "_ 0"
    assert voice["phoneme_id_map"]["^"] == voice["phoneme_id_map"]["$"] == []  # Piper's framing adds no id


def test_onnxruntime_backend_gives_the_torch_pipelines_seeded_output(tiny_dirs) -> None:
    texts = ["Hello there.", "A second, longer sentence for the voice."]
    fast = load_pipeline(tiny_dirs["multi"], backend="onnxruntime")
    slow = load_pipeline(tiny_dirs["multi"], backend="torch")
    assert fast.synth.backend == "onnxruntime" and slow.synth.backend == "torch"
    assert load_pipeline(tiny_dirs["multi"]).synth.backend == "onnxruntime"  # the CPU default
    for a, b in zip(fast.synthesize(texts, speakers=["vctk_p226"] * 2, seed=7),
                    slow.synthesize(texts, speakers=["vctk_p226"] * 2, seed=7)):
        assert a.waveform.shape == b.waveform.shape and np.abs(b.waveform).max() > 1e-3
        assert np.abs(a.waveform - b.waveform).max() <= 1e-4
    cache = list((ckpt.resolve_checkpoint_dir(tiny_dirs["multi"]) / "onnx").iterdir())
    assert len(cache) == 1 and sorted(p.name for p in cache[0].iterdir()) == ["acoustic.onnx", "acoustic_windows.onnx",
                                                                           "text.onnx"]


def test_export_and_infer_clis(tiny_dirs, tmp_path, capsys) -> None:
    out = tmp_path / "deep" / "v.onnx"
    assert export_cli.main(["onnx", "--ckpt_dir", str(tiny_dirs["single_dp"]), "--out", str(out)]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    assert export_cli.main(["onnx", "--ckpt_dir", str(tmp_path / "missing"), "--out", str(out), "--overwrite"]) == 2
    assert "not found" in capsys.readouterr().err
    code = infer_cli.main(["--ckpt_dir", str(tiny_dirs["single_dp"]), "--backend", "onnxruntime", "--text", "Hi.",
                           "--output_dir", str(tmp_path / "wav")])
    assert code == 0
    wavs = list((tmp_path / "wav").glob("*.wav"))
    assert len(wavs) == 1 and sf.info(str(wavs[0])).samplerate == 16000


# --------------------------------------------------------------------------- the joe voice, round trip
@pytest.mark.slow
def test_exported_joe_equals_pipers_own_file_at_zero_noise(tmp_path) -> None:
    torch.set_num_threads(1)
    piper_file = installed_voice("joe")
    convert_piper(piper_file, tmp_path / "joe")
    out = tmp_path / "export" / "joe.onnx"
    assert export_cli.main(["onnx", "--ckpt_dir", str(tmp_path / "joe"), "--out", str(out)]) == 0
    frontend = load_pipeline(tmp_path / "joe", backend="torch").synth.frontend
    texts = ["Hi.", "The quick brown fox jumps over the lazy dog.",
             "She sells sea shells by the sea shore, and the shells she sells are surely seashells, I am told."]
    for text in texts:
        ids = torch.tensor([frontend(text)["ids_blank"]])
        ours, piper = run_piper_graph(out, ids), run_piper_graph(piper_file, ids)
        assert ours.shape == piper.shape
        assert np.abs(ours - piper).max() <= 1e-4
    ours_voice = json.loads(Path(str(out) + ".json").read_text())
    piper_voice = json.loads(Path(str(piper_file) + ".json").read_text())
    for key in ("audio", "espeak", "phoneme_id_map", "num_symbols", "num_speakers", "speaker_id_map", "inference",
                "phoneme_type"):
        assert ours_voice[key] == piper_voice[key], key


@pytest.mark.parametrize("kind, sid", [("multi", 1), ("single_dp", None)])
def test_runtime_with_threads_decodes_in_windows_exactly(tmp_path, monkeypatch, kind, sid) -> None:
    # with >= 2 threads the runtime's acoustic graph decodes two time windows on the batch axis: the seeded
    # waveform must be the one-thread (plain graph) one. The tiny voice's utterances are short: windows from 1 frame
    from models.tts.vits import onnx_export

    monkeypatch.setattr(onnx_export, "WINDOW_MIN_FRAMES", 1)
    overrides = {} if kind == "multi" else {"n_speakers": 0, "gin_channels": 0, "use_sdp": False}
    root = tiny_checkpoint(tmp_path / kind, **overrides)
    text = "A long sentence, so that the tiny voice has frames to split, and then another clause for good measure."
    waveforms, graphs = {}, {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            pipeline = load_pipeline(root, backend="onnxruntime")
            runtime = pipeline.synth.runtime
            graphs[threads] = runtime.acoustic_graph.name
            speakers = None if sid is None else [sid]
            waveforms[threads] = pipeline.synthesize([text], speakers=speakers, seed=5)[0].waveform
        finally:
            torch.set_num_threads(1)
    assert graphs == {1: "acoustic.onnx", 2: "acoustic_windows.onnx"}
    model = load_pipeline(root, backend="torch").synth.model
    frames = waveforms[1].size // model.hop_length
    assert frames > 2 * model.dec.receptive_frames() + 2  # the windows were narrower than the utterance
    assert np.abs(waveforms[1]).max() > 1e-3
    np.testing.assert_allclose(waveforms[2], waveforms[1], rtol=0, atol=1e-5)
