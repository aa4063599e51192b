"""VALL-E against the reference (lifeiteng/vall-e, = Amphion v1) numbers in fixtures/valle/valle_tiny.pt.

Tolerances (fixtures/valle/README.md): logits/hidden <= 1e-4 abs, summed losses <= 1e-5 relative, codes and
step counts exact. Every size comes from the fixture's ``config``.
"""

from __future__ import annotations

import pytest
import torch

from models.tts.valle.config import ValleDecodingConfig
from models.tts.valle.decoding import continue_codes, fill_codebooks, generate_first_codebook
from tests.helpers import load_fixture
from tests.models.valle.fixture_model import model_from_fixture

FIXTURE = "valle/valle_tiny.pt"
ATOL = 1e-4
LOSS_RTOL = 1e-5


@pytest.fixture(scope="module")
def fixture():
    torch.set_num_threads(1)
    return load_fixture(FIXTURE)


def modes(fixture):
    return sorted(int(k[len("prefix_mode"):]) for k in fixture["outputs"] if k.startswith("prefix_mode"))


def assert_close(actual, expected, what):
    diff = (actual.float() - expected.float()).abs().max().item()
    assert actual.shape == expected.shape and diff <= ATOL, f"{what}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}, max diff {diff}"


def assert_loss(actual, expected, what):
    expected = float(expected)
    assert abs(float(actual) - expected) <= LOSS_RTOL * max(abs(expected), 1.0), f"{what}: {float(actual)} vs {expected}"


def run_training(model, fixture, mode, train_stage, nar_stage):
    i = fixture["inputs"]
    prefix = fixture["outputs"][f"prefix_mode{mode}"].get("prefix_len", 0)
    with torch.no_grad():
        return model(i["x"], i["x_lens"], i["y"], i["y_lens"], train_stage=train_stage, nar_stage=nar_stage, prefix_len=prefix)


def test_training_forward_every_stage(fixture):
    stage = fixture["config"]["nar_stage"]
    for mode in modes(fixture):
        model = model_from_fixture(fixture, mode)
        out = fixture["outputs"][f"prefix_mode{mode}"]
        for train_stage in (0, 1, 2):
            ref = out[f"train_stage{train_stage}"]
            got = run_training(model, fixture, mode, train_stage, stage)
            tag = f"mode {mode} train_stage {train_stage}"
            assert torch.equal(got["codes"], ref["codes_masked"]), tag
            assert_loss(got["loss"], ref["loss"], f"{tag} loss")
            for part in ("ar", "nar"):
                if f"{part}_logits" in ref:
                    assert_close(got[f"{part}_logits"], ref[f"{part}_logits"], f"{tag} {part} logits")
                    assert_close(got[f"{part}_hidden"], ref[f"{part}_hidden"], f"{tag} {part} hidden")


def test_nar_every_stage(fixture):
    for mode in modes(fixture):
        model = model_from_fixture(fixture, mode)
        stages = fixture["outputs"][f"prefix_mode{mode}"]["nar_all_stages"]
        assert sorted(stages) == list(range(1, fixture["config"]["num_quantizers"]))
        for stage, ref in stages.items():
            got = run_training(model, fixture, mode, 2, stage)
            assert_loss(got["loss"], ref["loss"], f"mode {mode} stage {stage} loss")
            assert_close(got["nar_logits"], ref["nar_logits"], f"mode {mode} stage {stage} logits")
            assert_close(got["nar_hidden"], ref["nar_hidden"], f"mode {mode} stage {stage} hidden")


def greedy_inference(model, fixture, use_cache):
    i = fixture["inputs"]
    prompt_lens = torch.tensor([i["inf_y"].shape[1]])
    cfg = ValleDecodingConfig(top_k=1, use_kv_cache=use_cache)
    ar = generate_first_codebook(model, i["inf_x"], i["inf_x_lens"], i["inf_y"][..., 0], prompt_lens, cfg, keep_logits=True)
    first = torch.cat([i["inf_y"][0, :, 0], ar.codes[0]]).unsqueeze(0)
    lengths = torch.tensor([first.shape[1]])
    codes, nar_logits = fill_codebooks(model, i["inf_x"], i["inf_x_lens"], first, lengths, i["inf_y"], prompt_lens, keep_logits=True)
    p = i["inf_y"].shape[1]
    return ar, codes[:, p:], [lg[:, p:] for lg in nar_logits]


def check_inference(ar, codes, nar_logits, ref, what):
    assert ar.steps == ref["ar_steps"], f"{what}: {ar.steps} AR steps, reference {ref['ar_steps']}"
    assert torch.equal(codes, ref["codes"]), f"{what}: codes differ"
    assert_close(ar.step_logits[0], ref["ar_step_logits"], f"{what} AR step logits")
    for stage, (got, exp) in enumerate(zip(nar_logits, ref["nar_logits"]), start=1):
        assert_close(got, exp, f"{what} NAR logits stage {stage}")


@pytest.mark.parametrize("use_cache", [True, False], ids=["kv_cache", "recompute"])
def test_greedy_inference(fixture, use_cache):
    for mode in modes(fixture):
        ref = fixture["outputs"][f"prefix_mode{mode}"]["inference"]
        ar, codes, nar_logits = greedy_inference(model_from_fixture(fixture, mode), fixture, use_cache)
        check_inference(ar, codes, nar_logits, ref, f"mode {mode} cache {use_cache}")
        cap = 16 * int(fixture["inputs"]["inf_x_lens"].max())
        expected_reason = "length" if codes.shape[1] > cap else "eos"
        assert ar.stop_reasons == [expected_reason]


def test_greedy_inference_stopping_on_eos(fixture):
    for mode in modes(fixture):
        ref = fixture["outputs"][f"prefix_mode{mode}"].get("inference_eos")
        if ref is None:
            continue
        state = dict(fixture["state_dict"])
        state["ar_predict_layer.weight"] = ref["ar_predict_layer_weight"]
        model = model_from_fixture(fixture, mode)
        model.load_state_dict(state, strict=True)
        for use_cache in (True, False):
            ar, codes, nar_logits = greedy_inference(model, fixture, use_cache)
            check_inference(ar, codes, nar_logits, ref, f"EOS mode {mode} cache {use_cache}")
            assert ar.stop_reasons == ["eos"]


def test_continual(fixture):
    i = fixture["inputs"]
    for mode in modes(fixture):
        ref = fixture["outputs"][f"prefix_mode{mode}"].get("continual")
        if ref is None:  # the reference's continual exists for 8 quantizers only
            continue
        codes, logits = continue_codes(model_from_fixture(fixture, mode), i["inf_x"], i["inf_x_lens"], i["inf_y"])
        assert torch.equal(codes, ref["codes"]), f"mode {mode}: continual codes differ"
        for stage, (got, exp) in enumerate(zip(logits, ref["nar_logits"]), start=1):
            assert_close(got, exp, f"mode {mode} continual stage {stage}")
