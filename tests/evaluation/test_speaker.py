"""Speaker similarity on real speech (resemblyzer, offline) and the WavLM x-vector plumbing."""

from __future__ import annotations

import itertools
from typing import Dict, List

import numpy as np
import pytest

from evaluation.base import EvalItem, read_audio
from evaluation.hf_loading import ModelUnavailableError
from evaluation.speaker import SpeakerSimilarity, WavLMEmbedder, build_embedder
from tests.evaluation.tiny_models import make_tiny_wavlm_sv


@pytest.fixture(scope="module")
def resemblyzer_sim() -> SpeakerSimilarity:
    return SpeakerSimilarity(sim_backend="resemblyzer")


def same_and_different(metric: SpeakerSimilarity, clips: Dict[str, List]) -> Dict[str, List[float]]:
    """sim_ref over every clip pair, split into same-speaker and different-speaker pairs."""
    audio = {(spk, i): read_audio(path) for spk, paths in clips.items() for i, path in enumerate(paths)}
    keys = sorted(audio)
    pairs = list(itertools.combinations(keys, 2))
    items = [EvalItem(f"{a}-{b}", audio[a][0], audio[a][1], reference=audio[b][0], reference_sr=audio[b][1])
             for a, b in pairs]
    scores = [row["sim_ref"] for row in metric.score(items)]
    out: Dict[str, List[float]] = {"same": [], "different": []}
    for (a, b), score in zip(pairs, scores):
        out["same" if a[0] == b[0] else "different"].append(score)
    return out


@pytest.mark.parametrize("corpus", ["librispeech_clips", "vctk_clips"])
def test_same_speaker_similarity_clearly_above_different(resemblyzer_sim, corpus, request) -> None:
    clips = request.getfixturevalue(corpus)
    assert len(clips) >= 4
    scores = same_and_different(resemblyzer_sim, clips)
    same, different = float(np.mean(scores["same"])), float(np.mean(scores["different"]))
    print(f"{corpus}: same {same:.3f} different {different:.3f}")
    assert same - different > 0.15
    assert min(scores["same"]) > float(np.median(scores["different"]))


def test_silent_output_scores_zero_similarity(resemblyzer_sim, vctk_clips) -> None:
    speaker = sorted(vctk_clips)[0]
    ref, sr = read_audio(vctk_clips[speaker][0])
    prompt, psr = read_audio(vctk_clips[speaker][1])
    items = [
        EvalItem("silent", np.zeros(sr, dtype=np.float32), sr, ref, sr, prompt, psr),
        EvalItem("empty", np.zeros(0, dtype=np.float32), sr, ref, sr, prompt, psr),
        EvalItem("copy", ref, sr, ref, sr, prompt, psr),
    ]
    rows = resemblyzer_sim.score(items)
    assert rows[0] == {"sim_o": 0.0, "sim_ref": 0.0} and rows[1] == {"sim_o": 0.0, "sim_ref": 0.0}
    assert rows[2]["sim_ref"] == pytest.approx(1.0, abs=1e-5)
    assert rows[2]["sim_o"] > 0.5  # same speaker, other sentence
    assert all(rows[2]["sim_o"] > r["sim_o"] for r in rows[:2])


def test_silent_prompt_is_an_error_naming_the_item(resemblyzer_sim, vctk_clips) -> None:
    wav, sr = read_audio(next(iter(vctk_clips.values()))[0])
    with pytest.raises(ValueError, match="utt7: the prompt audio is silent"):
        resemblyzer_sim.score([EvalItem("utt7", wav, sr, prompt=np.zeros(sr, dtype=np.float32), prompt_sr=sr)])


@pytest.fixture(scope="module")
def wavlm_dir(tmp_path_factory):
    return make_tiny_wavlm_sv(tmp_path_factory.mktemp("tiny_wavlm_sv"))


def test_wavlm_xvector_batches_like_single_items(wavlm_dir) -> None:
    embedder = build_embedder("wavlm", str(wavlm_dir), batch_size=3)
    assert isinstance(embedder, WavLMEmbedder) and embedder.batch_size == 3
    rng = np.random.default_rng(0)
    wavs = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 6000, 11000)]
    batched = embedder.embed(wavs)
    assert batched.shape == (3, 12)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    single = np.concatenate([embedder.embed([w]) for w in wavs])
    np.testing.assert_allclose(batched, single, atol=1e-4)  # padding + attention mask change nothing


def test_wavlm_through_the_metric_and_offline_error(wavlm_dir, monkeypatch) -> None:
    metric = SpeakerSimilarity(sim_backend="wavlm", sim_model=str(wavlm_dir))
    rng = np.random.default_rng(1)
    wav = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    row = metric.score([EvalItem("a", wav, 16000, reference=wav, reference_sr=16000)])[0]
    assert row["sim_ref"] == pytest.approx(1.0, abs=1e-5)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="microsoft/wavlm-base-plus-sv"):
        SpeakerSimilarity(sim_backend="wavlm")


def test_wavlm_split_head_equals_the_models_own_forward(wavlm_dir) -> None:
    import torch

    embedder = build_embedder("wavlm", str(wavlm_dir))
    wav = (0.1 * np.random.default_rng(2).standard_normal(9000)).astype(np.float32)
    inputs = embedder.feature_extractor([wav], sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        reference = embedder.model(**inputs).embeddings[0].numpy()
    np.testing.assert_allclose(embedder.embed([wav])[0], reference / np.linalg.norm(reference), atol=1e-5)
