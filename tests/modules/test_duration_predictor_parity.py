"""Stochastic duration predictor vs the official VITS and HierSpeech++ TTV runs (reverse pass, noise 0).

The SDP sees the stored text-encoder output; its weights are the ``dp.*`` entries of each fixture. Sizes come
from the stored configs (VITS: ``StochasticDurationPredictor(hidden, 192, 3, 0.5, 4, gin)``; TTV: hidden =
inter channels, gin 256).
"""

import pytest
import torch

from modules.duration_predictor import StochasticDurationPredictor
from tests.helpers import float_state_dict, load_fixture


def _sub(state_dict, prefix):
    return {k[len(prefix):]: v for k, v in float_state_dict(state_dict).items() if k.startswith(prefix)}


def _mask(lengths, size):
    return (torch.arange(size).unsqueeze(0) < lengths.unsqueeze(1)).float().unsqueeze(1)


@pytest.mark.parametrize("name", ["vits/vits_ljs_tiny.pt", "vits/vits_vctk_tiny.pt"])
def test_sdp_reverse_matches_official_vits(name):
    fx = load_fixture(name)
    cfg, inp, out = fx["config"], fx["inputs"], fx["outputs"]
    model_cfg = cfg["model"]
    n_speakers = cfg["n_speakers"]
    gin = model_cfg.get("gin_channels", 0) if n_speakers > 1 else 0
    dp = StochasticDurationPredictor(model_cfg["hidden_channels"], 192, 3, 0.5, 4, gin_channels=gin)
    dp.load_state_dict(_sub(fx["state_dict"], "dp."), strict=True)
    dp.eval()
    g = None
    if n_speakers > 1:
        emb = float_state_dict(fx["state_dict"])["emb_g.weight"]
        g = emb[inp["sid"]].unsqueeze(-1)
    x = out["infer_text_hidden"]
    x_mask = _mask(inp["ids_length"], x.size(2))
    with torch.no_grad():
        logw = dp(x, x_mask, g=g, reverse=True, noise_scale=inp["noise_scale_w"])
    torch.testing.assert_close(logw, out["infer_logw"], rtol=1e-4, atol=1e-4)
    w_ceil = torch.ceil(torch.exp(logw) * x_mask * inp["length_scale"])
    assert torch.equal(w_ceil, out["infer_w_ceil"])


def test_sdp_reverse_matches_official_ttv():
    fx = load_fixture("hierspeechpp/ttv_tiny.pt")
    cfg, inp, out = fx["config"], fx["inputs"], fx["outputs"]
    # The TTV text encoder's width is inter_channels (the official code ignores hidden_channels there).
    hidden = cfg["model"]["inter_channels"]
    assert out["inc_text_hidden"].size(1) == hidden
    gin = out["inc_g_rows"].size(1)
    dp = StochasticDurationPredictor(hidden, hidden, 3, 0.5, 4, gin_channels=gin)
    dp.load_state_dict(_sub(fx["state_dict"], "dp."), strict=True)
    dp.eval()
    x = out["inc_text_hidden"]
    x_mask = _mask(inp["token_length"], x.size(2))
    g = out["inc_g_rows"][:1]  # denoise_ratio 0: the first prompt row's style
    with torch.no_grad():
        logw = dp(x, x_mask, g=g, reverse=True, noise_scale=0.0)
    torch.testing.assert_close(logw, out["inc_logw"], rtol=1e-4, atol=1e-4)
