"""Loading a truncated SSL encoder: the layers left out on purpose are not reported, real differences are.

transformers prints a per-key table for every checkpoint key the model does not use; our encoder is built with
only the layers it needs (and without pre-training heads), so that table listed the dropped layers on every VC
run. processors.ssl replaces it with its own check, which stays silent for the expected keys and names anything
else (a weight the checkpoint lacks, an unknown key inside a layer we keep).
"""

from __future__ import annotations

import logging

import pytest
import safetensors.torch as safetensors_torch
import torch
import transformers

from processors.ssl import SSLFeatureExtractor

LAYERS, KEEP = 3, 1


def _tiny_config():
    return transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, do_stable_layer_norm=True, feat_extract_norm="layer",
        codevector_dim=16, proj_codevector_dim=16, num_codevectors_per_group=8)


@pytest.fixture(autouse=True)
def _transformers_warnings_on():
    """Whatever the environment says (recipes set TRANSFORMERS_VERBOSITY=error), let transformers warn here."""
    before = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    yield
    transformers.logging.set_verbosity(before)


def _load(path, capfd, caplog):
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        extractor = SSLFeatureExtractor.from_pretrained(str(path), layer=KEEP)
    captured = capfd.readouterr()
    ours = [r.getMessage() for r in caplog.records if r.name == "processors.ssl" and r.levelno >= logging.WARNING]
    return extractor, captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records), ours


def test_pretraining_checkpoint_truncated_loads_silently(tmp_path, capfd, caplog):
    """A wav2vec2 pre-training checkpoint (quantizer, projections) read up to layer 1: nothing to report."""
    torch.manual_seed(0)
    full = transformers.Wav2Vec2ForPreTraining(_tiny_config()).eval()
    full.save_pretrained(tmp_path)
    extractor, printed, ours = _load(tmp_path, capfd, caplog)
    assert "UNEXPECTED" not in printed and "LOAD REPORT" not in printed and "were not used" not in printed, printed
    assert ours == []
    # and the weights did arrive: the truncated encoder gives the full model's hidden_states[KEEP]
    wav = torch.randn(1, 3200)
    with torch.no_grad():
        expected = full.wav2vec2(wav, output_hidden_states=True).hidden_states[KEEP]
        got, _ = extractor(wav)
    assert torch.allclose(got.transpose(1, 2), expected, atol=1e-5)


def test_real_mismatch_is_still_reported(tmp_path, capfd, caplog):
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(_tiny_config()).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    state = safetensors_torch.load_file(str(weights))
    state.pop("feature_projection.projection.bias")
    state["encoder.layers.0.attention.gate.weight"] = torch.zeros(4)
    safetensors_torch.save_file(state, str(weights), metadata={"format": "pt"})
    _, printed, ours = _load(tmp_path, capfd, caplog)
    assert len(ours) == 1, printed
    assert "missing feature_projection.projection.bias" in ours[0]
    assert "unexpected encoder.layers.0.attention.gate.weight" in ours[0]
    assert "encoder.layers.1." not in ours[0] and "encoder.layers.2." not in ours[0]  # dropped on purpose


def test_encoder_saved_after_truncation_reloads_silently(tmp_path, capfd, caplog):
    """A pre-LN encoder saved once truncated (e.g. the recipes' random stand-in) lacks its final LayerNorm, which
    truncation drops anyway: reloading it is not news."""
    torch.manual_seed(0)
    model = transformers.Wav2Vec2Model(_tiny_config()).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.layer_norm.")}
    model.save_pretrained(tmp_path)
    safetensors_torch.save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    _, printed, ours = _load(tmp_path, capfd, caplog)
    assert ours == [], ours
