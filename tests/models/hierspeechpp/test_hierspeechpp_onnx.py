"""HierSpeech++ -> ONNX: the synthesizer's voice-conversion graph and the TTV graph equal the torch paths (zero
noise) for three lengths each, with one traced graph (dynamic lengths); the exporters behind echelon-export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.base import onnx_backend
from models.tts.hierspeechpp.config import HierSpeechPPConfig
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from models.tts.hierspeechpp.onnx_export import export_vc
from models.ttv.hierspeechpp_ttv.config import TTVConfig
from models.ttv.hierspeechpp_ttv.model import TextToVec
from models.ttv.hierspeechpp_ttv.onnx_export import export_ttv
from utils.config import load_config, validate
from utils.registry import get

TINY = Path(__file__).parents[3] / "models" / "tts" / "hierspeechpp" / "configs" / "model_tiny.json5"


@pytest.mark.slow
def test_vc_graph_equals_torch_convert_for_three_lengths(tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = validate(load_config(TINY)["model"], HierSpeechPPConfig, "model")
    torch.manual_seed(0)
    model = HierSpeechPPSynthesizer.from_config(cfg)
    session = onnx_backend.session(export_vc(model, tmp_path / "vc.onnx"), threads=1)
    model.prepare_for_inference()  # the torch fast path (polyphase, channels-last) is the reference
    generator = torch.Generator().manual_seed(1)
    for frames, prompt in ((13, 50), (40, 61), (97, 123)):
        ssl = torch.randn(1, cfg.ssl_channels, frames, generator=generator)
        log_f0 = torch.rand(1, 1, 4 * frames, generator=generator) * 5.0
        mel = torch.randn(1, cfg.n_mel_channels, prompt, generator=generator)
        noise = torch.randn(1, cfg.inter_channels, frames, generator=generator)
        g = model.style(mel, torch.tensor([prompt]))
        reference = model.convert(ssl, torch.tensor([frames]), log_f0, g, 0.333, noise=noise)["wav"].numpy()
        (ours,) = session.run(None, {"ssl": ssl.numpy(), "log_f0": log_f0.numpy(), "prompt_mel": mel.numpy(),
                                     "noise": noise.numpy(), "noise_scale": np.array([0.333], np.float32)})
        assert ours.shape == reference.shape == (1, 1, frames * model.hop_length)
        assert np.abs(ours - reference).max() <= 1e-4 and np.abs(reference).max() > 1e-3


@pytest.mark.slow
def test_ttv_graph_equals_torch_generate_for_three_lengths(tmp_path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TextToVec.from_config(TTVConfig(inter_channels=32, hidden_channels=32))
    session = onnx_backend.session(export_ttv(model, tmp_path / "ttv.onnx"), threads=1)
    generator = torch.Generator().manual_seed(1)
    for symbols, prompt in ((5, 50), (21, 61), (64, 123)):
        ids = torch.randint(1, 178, (1, symbols), generator=generator)
        mel = torch.randn(1, 80, prompt, generator=generator)
        w2v, pitch, frames = model.generate(ids, torch.tensor([symbols]), model.style(mel, torch.tensor([prompt])),
                                            noise_scale=0.0, noise_scale_w=0.0)
        ours = session.run(None, {"input": ids.numpy(), "prompt_mel": mel.numpy(),
                                  "scales": np.array([0.0, 1.0, 0.0], np.float32)})
        assert ours[0].shape == tuple(w2v.shape) and ours[1].shape == tuple(pitch.shape)
        assert np.abs(ours[0] - w2v.numpy()).max() <= 1e-4 and np.abs(ours[1] - pitch.numpy()).max() <= 1e-4
        slower = session.run(None, {"input": ids.numpy(), "prompt_mel": mel.numpy(),
                                    "scales": np.array([0.0, 3.0, 0.0], np.float32)})
        assert slower[0].shape[2] > ours[0].shape[2]  # the length scale reaches the graph's output length


def test_exporters_are_registered() -> None:
    assert get("exporter", "hierspeechpp").__module__ == "models.tts.hierspeechpp.onnx_export"
    assert get("exporter", "hierspeechpp_ttv").__module__ == "models.ttv.hierspeechpp_ttv.onnx_export"



@pytest.mark.slow
def test_int8_quantisation_of_the_ttv_graph_runs(tmp_path) -> None:
    """``--quantize int8`` of a graph in which torch's exporter stored one weight for several parameters of equal
    values and read the others through Identity nodes (the style encoder's key conv starts as a copy of its query
    conv, a Conv with bias; untrained zero-initialised adaLN layers of the DiT flows coincide, Gemms): onnxruntime's
    quantiser failed on both. Each gets its own copy, and the quantised graph loads and runs. The TTV graph holds
    both cases, as the synthesizer's VC graph does (which takes twice as long here)."""
    import onnx

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = export_ttv(TextToVec.from_config(TTVConfig(inter_channels=32, hidden_channels=32)), tmp_path / "ttv.onnx")
    generator = torch.Generator().manual_seed(1)
    feeds = {"input": torch.randint(1, 178, (1, 21), generator=generator).numpy(),
             "prompt_mel": torch.randn(1, 80, 61, generator=generator).numpy(),
             "scales": np.array([0.0, 1.0, 0.0], np.float32)}
    assert onnx_backend.own_weight_copies(onnx.load(str(path)).graph) > 0  # the case this test is about
    reference = onnx_backend.session(path, threads=1).run(None, feeds)
    quantised = onnx_backend.quantize_int8(path)
    assert {"ConvInteger", "MatMulInteger"} <= {node.op_type for node in onnx.load(str(quantised)).graph.node}
    ours = onnx_backend.session(quantised, threads=1).run(None, feeds)
    assert [o.shape[:2] for o in ours] == [r.shape[:2] for r in reference]  # int8 may move the frame count
    assert all(np.isfinite(o).all() and np.abs(o).max() > 0 for o in ours)
