"""Parity with the official HierSpeech++ / VITS front ends (fixtures/hierspeechpp/frontend.pt, vits_vctk_tiny.pt).

Every setting is read from the fixture's stored ``config``; tolerances follow fixtures/README.md.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from processors.spectrogram import HierSpeechLinearSpectrogram, HierSpeechLogMel, VitsLinearSpectrogram
from tests.helpers import assert_yaapt_f0_matches, load_fixture


def _logmel_from_config(cfg: dict) -> HierSpeechLogMel:
    assert cfg["power"] == 2.0 and cfg["center"] and cfg["pad_mode"] == "reflect"
    assert cfg["mel_scale"] == "htk" and cfg["norm"] is None and cfg["drop_last_frame"]
    return HierSpeechLogMel(
        sample_rate=cfg["sample_rate"],
        n_fft=cfg["n_fft"],
        win_length=cfg["win_length"],
        hop_length=cfg["hop_length"],
        f_min=cfg["f_min"],
        f_max=cfg["f_max"],
        n_mels=cfg["n_mels"],
    ).eval()


def test_hierspeech_logmel_and_filterbank():
    fx = load_fixture("hierspeechpp/frontend.pt")
    mel = _logmel_from_config(fx["config"]["mel"])
    out = fx["outputs"]
    assert (mel.mel_fb - out["mel_fb"]).abs().max().item() <= 1e-4
    audio = fx["inputs"]["audio"]
    got = mel(audio)
    assert got.shape == out["log_mel"].shape
    assert (got - out["log_mel"]).abs().max().item() <= 1e-4
    odd = mel(audio[:, : fx["inputs"]["odd_len"]])
    assert odd.shape == out["log_mel_odd"].shape
    assert (odd - out["log_mel_odd"]).abs().max().item() <= 1e-4


def test_hierspeech_prompt_mel_pair_of_vc_script():
    fx = load_fixture("hierspeechpp/frontend.pt")
    mel = _logmel_from_config(fx["config"]["mel"])
    target = fx["inputs"]["target_audio"]
    got = mel(target)
    expected = fx["outputs"]["vc_trg_mel"]  # the [original, original] pair built when denoise_ratio == 0
    for row in range(expected.size(0)):
        assert (got[0] - expected[row]).abs().max().item() <= 1e-4
    assert mel.frame_lengths(torch.tensor([target.size(-1)])).tolist() == [fx["outputs"]["vc_trg_length"][0].item()]


def test_hierspeech_linear_and_mel_of_synth_segment():
    fx = load_fixture("hierspeechpp/synth_vc_tiny.pt")
    data = fx["config"]["data"]
    seg = fx["inputs"]["seg_audio"].squeeze(1)
    linear = HierSpeechLinearSpectrogram(data["filter_length"], data["win_length"], data["hop_length"]).eval()
    got = linear(seg)
    assert got.shape == fx["inputs"]["seg_linear"].shape
    assert (got - fx["inputs"]["seg_linear"]).abs().max().item() <= 1e-4
    mel = HierSpeechLogMel(
        data["sampling_rate"], data["filter_length"], data["win_length"], data["hop_length"],
        data["mel_fmin"], data["mel_fmax"], data["n_mel_channels"],
    ).eval()
    assert (mel(seg) - fx["inputs"]["seg_mel"]).abs().max().item() <= 1e-4


def test_vits_linear_spectrogram():
    fx = load_fixture("vits/vits_vctk_tiny.pt")
    data = fx["config"]["data"]
    spec = VitsLinearSpectrogram(data["filter_length"], data["hop_length"], data["win_length"]).eval()
    audio = fx["inputs"]["vc_audio_norm"]
    got = spec(audio)
    assert got.shape == fx["inputs"]["vc_spec"].shape
    assert got.size(1) == fx["config"]["spec_channels"]
    assert (got - fx["inputs"]["vc_spec"]).abs().max().item() <= 1e-4
    lengths = torch.tensor([audio.size(-1)])
    assert spec.frame_lengths(lengths).tolist() == fx["inputs"]["vc_spec_length"].tolist()


# --------------------------------------------------------------------------- F0 (frontend.pt part b)
def _yaapt_kwargs(cfg: dict, sample_rate: int) -> dict:
    assert cfg["zero_pad_each_side_samples"] == int(cfg["frame_length"] / 1000 * sample_rate) // 2
    assert cfg["nccf_thresh1"] == 0.25 and cfg["tda_frame_length"] == 25.0
    return {"frame_length_ms": cfg["frame_length"], "frame_space_ms": cfg["frame_space"]}


def test_yaapt_f0_of_vc_script_matches():
    """YAAPT F0 of the VC script: fast port == library bit for bit here; vs the fixture up to the BLAS effect.

    The fixture was computed on one machine's BLAS; another BLAS kernel can flip ties in YAAPT's dynamic
    programming (see tests/helpers.assert_yaapt_f0_matches for the measured effect and the tolerance).
    """
    from processors.f0 import vc_pad_source, yaapt_f0

    fx = load_fixture("hierspeechpp/frontend.pt")
    sr = fx["config"]["mel"]["sample_rate"]
    kwargs = _yaapt_kwargs(fx["config"]["yaapt"], sr)
    f0_max = fx["config"]["yaapt"]["f0_max_vc"]
    f0_max_ttv = float(re.search(r"\d+(\.\d+)?", str(fx["config"]["yaapt"]["f0_max_ttv_preprocessing"]))[0])
    out = fx["outputs"]

    padded = vc_pad_source(fx["inputs"]["audio"])
    assert torch.equal(padded, out["src_padded_audio"])
    hop = int(kwargs["frame_space_ms"] / 1000 * sr)
    cases = (("src_f0_hz", padded[0], f0_max), ("trg_f0_hz", fx["inputs"]["target_audio"][0], f0_max),
             ("ttv_f0_hz", padded[0], f0_max_ttv))
    for key, wav, top in cases:
        fast = yaapt_f0(wav.numpy(), sr, f0_max=top, fast=True, **kwargs)
        library = yaapt_f0(wav.numpy(), sr, f0_max=top, fast=False, **kwargs)
        np.testing.assert_array_equal(fast, library, err_msg=f"{key}: fast YAAPT differs from amfm_decompy")
        assert fast.shape[0] == wav.shape[-1] // hop
        assert_yaapt_f0_matches(fast, out[key][0, 0].numpy(), sr, key)


def test_f0_handling_of_vc_script_on_the_official_contours():
    """Voiced statistics, re-targeting and ln(F0+1) of the VC script, fed the fixture's own YAAPT contours."""
    from processors.f0 import to_log_f0, vc_log_f0, voiced_stats

    out = load_fixture("hierspeechpp/frontend.pt")["outputs"]
    src, trg = out["src_f0_hz"][0, 0].numpy(), out["trg_f0_hz"][0, 0].numpy()
    stats = out["stats"]
    for name, f0 in (("src", src), ("trg", trg)):
        mean, std = voiced_stats(f0)
        assert mean == stats[f"{name}_voiced_mean"] and std == stats[f"{name}_voiced_std"]
        assert int((f0 != 0).sum()) == stats[f"{name}_voiced_frames"]

    log_f0 = vc_log_f0(src, trg)
    assert log_f0.dtype == torch.float32
    assert (log_f0 - out["vc_log_f0"][0, 0]).abs().max().item() <= 1e-6
    assert torch.equal(log_f0 == 0, out["vc_log_f0"][0, 0] == 0)
    plain = to_log_f0(src)
    assert (plain - out["log_f0_plain"][0, 0]).abs().max().item() <= 1e-6


def test_official_ssl_input_padding():
    from processors.ssl import official_ssl_input

    fx = load_fixture("hierspeechpp/frontend.pt")
    got = official_ssl_input(fx["inputs"]["audio"])
    assert torch.equal(got, fx["outputs"]["vc_w2v_input"])
    hop = fx["config"]["mel"]["hop_length"]
    assert (got.size(-1) - 80) // hop == fx["outputs"]["src_padded_audio"].size(-1) // hop


# --------------------------------------------------------------------------- text (frontend.pt part c, VITS inputs)
def test_symbol_table_and_apostrophe():
    from processors.text import SYMBOL_TO_ID, SYMBOLS

    fx = load_fixture("hierspeechpp/frontend.pt")
    assert SYMBOLS == fx["outputs"]["symbols"]
    assert [i for i, s in enumerate(SYMBOLS) if s == "'"] == fx["outputs"]["symbol_indices_of_apostrophe"]
    assert SYMBOL_TO_ID["'"] == fx["outputs"]["symbol_to_id_apostrophe"]


def test_english_text_records():
    from processors.text import TextFrontend

    fx = load_fixture("hierspeechpp/frontend.pt")
    cfg = fx["config"]["text"]
    assert cfg["cleaners"] == ["english_cleaners2"] and cfg["blank_id"] == 0
    frontend = TextFrontend(add_blank=cfg["add_blank"])
    for record in fx["outputs"]["text"]:
        got = frontend(record["text"])
        assert got["cleaned"] == record["cleaned"], record["text"]
        assert got["ids"] == record["ids"].tolist(), record["text"]
        assert got["ids_blank"] == record["ids_blank"].tolist(), record["text"]
    quirk = fx["outputs"]["text_str_list_quirk"]  # inference.py phonemises str(list_of_lines)
    got = frontend(quirk["str_of_list"])
    assert got["cleaned"] == quirk["cleaned"] and got["ids_blank"] == quirk["ids_blank"].tolist()


def test_vits_text_inputs():
    from processors.text import TextFrontend

    frontend = TextFrontend(add_blank=True)
    for name in ("vits/vits_ljs_tiny.pt", "vits/vits_vctk_tiny.pt"):
        fx = load_fixture(name)
        assert fx["config"]["data"]["text_cleaners"] == ["english_cleaners2"]
        got = frontend(fx["inputs"]["text"])
        assert got["cleaned"] == fx["inputs"]["phonemes"]
        assert got["ids_blank"] == fx["inputs"]["ids"][0].tolist()


def test_ttv_fixture_text_and_padded_batch_mel():
    """ttv_tiny.pt: inference/training token ids and the log-mel of its zero-padded training batch."""
    from processors.text import TextFrontend

    fx = load_fixture("hierspeechpp/ttv_tiny.pt")
    data = fx["config"]["data"]
    frontend = TextFrontend(add_blank=data["add_blank"])
    got = frontend(fx["inputs"]["sentence"])
    assert got["cleaned"] == fx["inputs"]["phonemes"]
    assert got["ids"] == fx["inputs"]["ids"].tolist() and got["ids_blank"] == fx["inputs"]["token"][0].tolist()
    train = fx["inputs"]["train"]
    for b, sentence in enumerate(train["sentences"]):
        item = frontend(sentence)
        assert item["cleaned"] == train["phonemes"][b]
        n, n_ctc = int(train["text_length"][b]), int(train["text_ctc_length"][b])
        assert item["ids_blank"] == train["text"][b, :n].tolist() and item["ids"] == train["text_for_ctc"][b, :n_ctc].tolist()
    mel = HierSpeechLogMel(
        data["sampling_rate"], data["filter_length"], data["win_length"], data["hop_length"],
        data["mel_fmin"], data["mel_fmax"], data["n_mel_channels"],
    ).eval()
    assert (mel(train["audio"]) - train["mel"]).abs().max().item() <= 1e-4  # padded batch as is, no lengths
