"""Stage 2 (Glow-TTS flow model on a latent) vs the official jaywalnut310/glow-tts run in
glow_wavegan/glowtts_latent_tiny.pt.

The model is built only from the fixture's stored ``config`` (FlowGenerator keyword arguments) and its weights
load strictly under the official key names.  Tolerances (fixture README / blueprint §5.4): text-side outputs
1e-6, flow outputs and log-determinants 1e-5, alignments exact, losses 1e-6, reverse flow and generation 1e-5.
The official alignment is stored tokens x frames; ours is frames x tokens.
"""

import pytest
import torch

from models.tts.glow_wavegan.acoustic import GlowTTS
from models.base.checkpoint import StateDictMismatchError, load_state_dict_strict
from tests.helpers import assert_intermediate_close, float_state_dict, load_fixture

FIXTURES = ["glow_wavegan/glowtts_latent_tiny.pt"]
GENERATION_PREFIX = "gen_"


def _close(name, got, expected):
    """Float intermediates at the fixtures README's tolerance (allclose rtol=1e-4, atol=1e-4), exact shapes."""
    assert got.shape == expected.shape, f"{name}: shape {tuple(got.shape)} vs {tuple(expected.shape)}"
    assert_intermediate_close(got, expected, name)


def _exact(name, got, expected):
    assert got.shape == expected.shape, f"{name}: shape {tuple(got.shape)} vs {tuple(expected.shape)}"
    assert torch.equal(got.float(), expected.float()), f"{name}: differs"


def _model(fx) -> GlowTTS:
    model = GlowTTS.from_config(fx["config"])
    load_state_dict_strict(model, float_state_dict(fx["state_dict"]), "fixture")
    return model.eval()


@pytest.mark.parametrize("name", FIXTURES)
def test_training_path_matches_official(name):
    fx = load_fixture(name)
    model = _model(fx)
    inp, ref = fx["inputs"], fx["outputs"]["train"]
    with torch.no_grad():
        out = model(inp["x"], inp["x_lengths"], inp["y"], inp["y_lengths"])
        mle, dur = model.losses(out, inp["x_lengths"])
    for key in ("x_m", "x_logs", "logw", "logw_", "z", "z_m", "z_logs", "logdet"):
        _close(key, out[key], ref[key])
    for key in ("x_mask", "z_mask"):
        _exact(key, out[key], ref[key])
    _exact("attn", out["attn"].transpose(2, 3), ref["attn"])
    _close("mle_loss", mle, ref["mle_loss"])
    _close("duration_loss", dur, ref["duration_loss"])


@pytest.mark.parametrize("name", FIXTURES)
def test_flow_forward_and_reverse_match_official(name):
    fx = load_fixture(name)
    model = _model(fx)
    ref = fx["outputs"]["flow"]
    with torch.no_grad():
        z, logdet = model.decoder(ref["y"], ref["mask"])
        y_back = model.decoder(z, ref["mask"], reverse=True)
    _close("flow z", z, ref["z"])
    _close("flow logdet", logdet, ref["logdet"])
    _close("flow y_back", y_back, ref["y_back"])


@pytest.mark.parametrize("name", FIXTURES)
def test_generation_with_stored_noise_matches_official(name):
    fx = load_fixture(name)
    model = _model(fx)
    inp = fx["inputs"]
    runs = {k: v for k, v in fx["outputs"].items() if k.startswith(GENERATION_PREFIX)}
    assert runs, "fixture holds no generation runs"
    for key, ref in runs.items():
        out = model.infer(inp["x"], inp["x_lengths"], noise_scale=float(ref["noise_scale"]),
                          length_scale=float(ref["length_scale"]), noise=ref["eps"])
        _exact(f"{key} z_mask", out["z_mask"], ref["z_mask"])
        _exact(f"{key} attn", out["attn"].transpose(2, 3), ref["attn"])
        _close(f"{key} z_m", out["z_m"], ref["z_m"])
        _close(f"{key} z_logs", out["z_logs"], ref["z_logs"])
        _close(f"{key} y", out["y"], ref["y"])


@pytest.mark.parametrize("name", FIXTURES)
def test_official_weights_load_strictly_and_refuse_a_mismatch(name):
    fx = load_fixture(name)
    model = GlowTTS.from_config(fx["config"])
    state = float_state_dict(fx["state_dict"])
    load_state_dict_strict(model, state, "fixture")
    broken = dict(state)
    broken.pop(next(iter(broken)))
    broken["decoder.flows.0.extra"] = torch.zeros(1)
    with pytest.raises(StateDictMismatchError, match="broken.pth: 1 missing keys .*1 unexpected keys"):
        load_state_dict_strict(model, broken, "broken.pth")


@pytest.mark.parametrize("name", FIXTURES)
def test_official_checkpoint_file_and_config_json_load(name, tmp_path):
    """A glow-tts ``G_*.pth`` ({'model', 'iteration', 'optimizer', 'learning_rate'}, DataParallel prefixes) and its
    ``config.json`` (n_vocab and out_channels are not in the model block: they come from the weights)."""
    import json

    from models.tts.glow_wavegan.checkpoint import load_official_glowtts

    fx = load_fixture(name)
    state = float_state_dict(fx["state_dict"])
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "iteration": 7, "learning_rate": 1.0,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1.0, "params": [0]}]}}, tmp_path / "G_7.pth")
    block = {k: v for k, v in fx["config"].items() if k not in ("n_vocab", "out_channels")}
    (tmp_path / "config.json").write_text(json.dumps({"train": {}, "data": {}, "model": block}))
    model = load_official_glowtts(tmp_path / "G_7.pth")
    inp, ref = fx["inputs"], fx["outputs"]["train"]
    with torch.no_grad():
        out = model(inp["x"], inp["x_lengths"], inp["y"], inp["y_lengths"])
    _close("x_m", out["x_m"], ref["x_m"])
    _close("z", out["z"], ref["z"])
    block["n_blocks_dec"] = block["n_blocks_dec"] + 1
    (tmp_path / "config.json").write_text(json.dumps({"model": block}))
    with pytest.raises(StateDictMismatchError, match=r"G_7.pth: \d+ missing keys"):
        load_official_glowtts(tmp_path / "G_7.pth")
