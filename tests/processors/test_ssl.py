"""processors.ssl on tiny random wav2vec2 models: truncation == hidden_states[k], batching, padding, errors."""

from __future__ import annotations

import logging

import pytest
import torch

from processors.audio import load_audio
from processors.ssl import SSLFeatureExtractor, SSLModelError, build_random_ssl, official_ssl_input
from tests.helpers import MINI_CORPUS


def _speech(seconds: float, name: str = "reference_2.wav") -> torch.Tensor:
    wav = load_audio(MINI_CORPUS / "hierspeechpp_examples" / name, 16000)
    return torch.from_numpy(wav[: int(seconds * 16000)])


@pytest.fixture(scope="module", params=[True, False], ids=["stable_layer_norm", "post_layer_norm"])
def saved_model(request, tmp_path_factory):
    """A full 3-layer random model saved as a local directory, and its hidden states on real speech."""
    full = build_random_ssl(layer=3, num_layers=3, stable_layer_norm=request.param, seed=1)
    path = tmp_path_factory.mktemp("ssl") / "tiny_w2v"
    full.model.save_pretrained(path)
    wav = _speech(0.8).unsqueeze(0)
    with torch.no_grad():
        hidden = full.model(wav, output_hidden_states=True).hidden_states
    return path, wav, hidden


@pytest.mark.parametrize("layer", [1, 2])
def test_truncated_encoder_equals_hidden_states(saved_model, layer):
    path, wav, hidden = saved_model
    extractor = SSLFeatureExtractor.from_pretrained(str(path), layer=layer)
    assert len(extractor.model.encoder.layers) == layer  # later layers are not built
    feats, frames = extractor(wav)
    expected = hidden[layer].transpose(1, 2)  # transformers >= 5: un-normalised for every layer
    assert feats.shape == expected.shape and frames.tolist() == [expected.size(-1)]
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-5)
    assert (feats - hidden[layer + 1].transpose(1, 2)).abs().max() > 1e-2  # the next layer differs


@pytest.mark.parametrize("stable", [True, False])
def test_batched_padded_equals_single_items(stable):
    extractor = build_random_ssl(layer=2, num_layers=3, stable_layer_norm=stable, seed=2)
    items = [official_ssl_input(_speech(s, n).unsqueeze(0))[0] for s, n in ((0.9, "reference_1.wav"), (0.5, "reference_3.wav"))]
    lengths = torch.tensor([x.numel() for x in items])
    batch = torch.zeros(2, int(lengths.max()))
    for b, x in enumerate(items):
        batch[b, : x.numel()] = x
    feats, frames = extractor(batch, lengths)
    for b, x in enumerate(items):
        alone, n = extractor(x.unsqueeze(0))
        assert frames[b].item() == n.item() == (x.numel() - 80) // 320
        torch.testing.assert_close(feats[b, :, : n.item()], alone[0], rtol=1e-4, atol=1e-4)
        assert feats[b, :, n.item():].abs().sum() == 0


def test_random_model_is_announced(caplog):
    with caplog.at_level(logging.WARNING, logger="processors.ssl"):
        extractor = build_random_ssl()
    assert "RANDOMLY INITIALISED" in caplog.text
    assert extractor.name.startswith("random")


def test_unreachable_model_names_the_id(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import time
    for model_id in ("facebook/mms-300m", "echelon-tests/no-such-ssl-model"):
        with pytest.raises(SSLModelError, match=f"{model_id}.*offline") as err:
            SSLFeatureExtractor.from_pretrained(model_id, cache_dir=str(tmp_path / "empty_cache"))
        assert "\n" not in str(err.value)
    with pytest.raises(SSLModelError, match="directory not found"):
        SSLFeatureExtractor.from_pretrained(str(tmp_path / "nowhere" / "model"))


def test_layer_out_of_range(saved_model):
    with pytest.raises(ValueError, match="layer 9"):
        SSLFeatureExtractor.from_pretrained(str(saved_model[0]), layer=9)


def test_positional_conv_norm_computed_once_same_features_and_keys():
    """The weight-normed positional conv is folded for inference only: same features, same state-dict keys,
    and a deep copy (the VC benchmark copies the encoder) computes with its own weights."""
    import copy

    extractor = build_random_ssl(layer=2, num_layers=3, seed=3)
    conv = extractor.model.encoder.pos_conv_embed.conv
    assert "forward" in vars(conv) and any("parametrizations" in k for k in extractor.state_dict())
    wav = official_ssl_input(_speech(0.5).unsqueeze(0))
    feats, _ = extractor(wav)
    twin = copy.deepcopy(extractor)
    with torch.no_grad():
        twin.model.encoder.pos_conv_embed.conv.parametrizations.weight.original0.mul_(2.0)
    assert (twin(wav)[0] - feats).abs().max() > 1e-3  # the copy's own (changed) weights, not a stale cache
    del vars(conv)["forward"]  # torch's own forward recomputes the norm
    torch.testing.assert_close(extractor(wav)[0], feats, rtol=1e-5, atol=1e-5)
