"""Full-size key layout (keys_full.json) and strict loading of reference-format checkpoint files."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import torch

from models.tts.valle.model import Valle
from models.tts.valle.reference_checkpoint import (
    ValleCheckpointError, check_state_dict, config_from_amphion_args, config_from_state_dict,
    find_amphion_args, load_reference_checkpoint, restore_tied,
)  # fmt: skip
from tests.helpers import fixtures_dir, load_fixture
from tests.models.valle.fixture_model import model_from_fixture


def full_size_keys():
    path = fixtures_dir() / "valle" / "keys_full.json"
    if not fixtures_dir().is_dir():
        pytest.skip(f"parity fixtures not found at {fixtures_dir()}")
    return json.loads(path.read_text())


def full_size_config(ref: dict) -> dict:
    """Sizes of a keys_full.json entry, read from its ``constructor`` string ("VALLE(d, heads, layers, ...)")."""
    d_model, nhead, layers = map(int, re.match(r"VALLE\((\d+), (\d+), (\d+),", ref["constructor"]).groups())
    return dict(d_model=d_model, nhead=nhead, num_layers=layers,
                num_quantizers=int(re.search(r"num_quantizers=(\d+)", ref["constructor"])[1]),
                num_text_tokens=ref["num_text_tokens"], num_audio_tokens=ref["num_audio_tokens"],
                prepend_bos="prepend_bos=True" in ref["constructor"])  # fmt: skip


def meta_model(sizes: dict) -> Valle:
    with torch.device("meta"):
        return Valle.from_config(sizes)


@pytest.mark.parametrize("variant", ["lifeiteng_default_valle", "lifeiteng_default_valle_prepend_bos"])
def test_full_size_keys_and_shapes(variant):
    ref = full_size_keys()[variant]
    sizes = full_size_config(ref)
    model = meta_model(sizes)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: list(v) for k, v in ref["keys"].items()}
    unique = {id(p): p.numel() for p in model.parameters()}
    assert sum(unique.values()) == ref["num_params_unique"]
    assert sum(p.numel() for n, p in model.named_parameters() if n.startswith("ar_")) == ref["num_params_ar"]
    # A full-size reference state_dict (meta tensors of the listed shapes) passes the strict check.
    fake = {k: torch.empty(v, device="meta") for k, v in ref["keys"].items()}
    check_state_dict(model, fake, "keys_full.json")
    read_back = config_from_state_dict(fake, nhead=sizes["nhead"])
    assert {k: getattr(read_back, k) for k in sizes} == sizes


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("valle/valle_tiny.pt")


def fresh(fixture):
    model = model_from_fixture(fixture, 1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def assert_loaded(model, fixture):
    for key, value in fixture["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value), key


def test_plain_and_icefall_files_load_strictly(fixture, tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save(fixture["state_dict"], plain)
    icefall = tmp_path / "epoch-10.pt"
    ddp = {f"module.{k}": v for k, v in fixture["state_dict"].items()}
    torch.save({"model": ddp, "optimizer": {"state": {}}, "exp_dir": pathlib.PosixPath("exp/valle"), "epoch": 10}, icefall)
    for path in (plain, icefall):
        model = fresh(fixture)
        assert load_reference_checkpoint(model, path) == path
        assert_loaded(model, fixture)


def test_accelerate_folder_with_deduplicated_ties(fixture, tmp_path):
    from accelerate.utils import save

    folder = tmp_path / "final_epoch-0100_step-0837900_loss-3.883116"
    folder.mkdir()
    # accelerate's save_state writes the model this way: safetensors, shared tensors de-duplicated.
    save(model_from_fixture(fixture, 1).state_dict(), folder / "model.safetensors", safe_serialization=True)
    torch.save({}, folder / "optimizer.bin")
    model = fresh(fixture)
    load_reference_checkpoint(model, folder)
    assert_loaded(model, fixture)
    c = fixture["config"]
    (tmp_path / "args.json").write_text(json.dumps({"model": {"decoder_dim": c["d_model"], "nhead": c["nhead"], "prefix_mode": 1}}))
    found = config_from_amphion_args(find_amphion_args(folder))
    assert (found.d_model, found.nhead) == (c["d_model"], c["nhead"])


def test_mismatches_are_one_line_errors(fixture, tmp_path):
    state = dict(fixture["state_dict"])
    state.pop("ar_decoder.norm.bias")
    state["ar_extra.weight"] = torch.zeros(1)
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(ValleCheckpointError) as err:
        load_reference_checkpoint(fresh(fixture), broken)
    message = str(err.value)
    assert "\n" not in message and str(broken) in message
    assert "ar_decoder.norm.bias" in message and "ar_extra.weight" in message
    tied = fresh(fixture).tied_pairs()  # (output layer, embedding) pairs: as many as the fixture's quantizers give
    for out_key, _ in tied[:1]:
        untied = dict(fixture["state_dict"])
        untied[out_key] = untied[out_key] + 1
        with pytest.raises(ValleCheckpointError, match="tied weights"):
            check_state_dict(fresh(fixture), restore_tied(fresh(fixture), untied), "x")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": fixture["state_dict"], "params": object()}, pickled)
    with pytest.raises(ValleCheckpointError, match="weights_only=True"):
        load_reference_checkpoint(fresh(fixture), pickled)


def test_accelerate_file_lacks_tied_duplicates(fixture, tmp_path):
    from safetensors.torch import load_file
    from accelerate.utils import save

    save(model_from_fixture(fixture, 1).state_dict(), tmp_path / "model.safetensors", safe_serialization=True)
    stored = load_file(str(tmp_path / "model.safetensors"))
    dropped = set(fixture["state_dict"]) - set(stored)
    tied = model_from_fixture(fixture, 1).tied_pairs()  # j = 0..Q-3: none for a 2-codebook fixture
    assert dropped == {pair[0] for pair in tied} and len(dropped) == max(fixture["config"]["num_quantizers"] - 2, 0)
