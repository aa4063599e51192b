"""Every inference pipeline through the task-level API (tiny random models), pipeline specs and settings.

The models are the tiny random ones of the model tests (their builders are reused): the audio is meaningless,
but every pipeline step runs for real.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bins import infer as infer_cli
from models.base.checkpoint import save_checkpoint
from models.base.pipeline import load_pipeline
from models.base.tasks import Audio, SpeechSuperResolution, TextToSpeech, VoiceConversion
from models.base.waveforms import split_points
from models.sr.speechsr.model import SpeechSR
from models.tts.vits.config import data_from_official_config, from_official_config
from models.tts.vits.model import VITS
from models.ttv.hierspeechpp_ttv.tts import TTSOptions, ZeroShotTTS
from processors.audio import load_audio, save_audio
from tests.helpers import MINI_CORPUS
from tests.models.hierspeechpp.test_vc_inference import SSL_DIM, SSL_LAYER, _tiny_model
from tests.models.ttv.test_tts_pipeline import _models as tiny_ttv_and_synth
from tests.models.vits.test_vits_inference import OFFICIAL as VITS_OFFICIAL
from utils.config import ConfigError, to_dict

PROMPT = MINI_CORPUS / "hierspeechpp_examples" / "reference_4.wav"
SOURCE = MINI_CORPUS / "hierspeechpp_examples" / "reference_1.wav"


def _save_vits(root, n_speakers=3):
    torch.manual_seed(0)
    official = json.loads(json.dumps(VITS_OFFICIAL))
    official["data"]["n_speakers"] = n_speakers
    official["model"]["gin_channels"] = 8
    model = VITS.from_config(from_official_config(official))
    data = {k: v for k, v in to_dict(data_from_official_config(official)).items()
            if k in ("sample_rate", "filter_length", "hop_length", "win_length", "add_blank")}
    cfg = {"model_type": "vits", "model": to_dict(model.config),
           "data": {**data, "speakers": ["ann", "bob", "cy"][:n_speakers]}}
    return save_checkpoint(root / "checkpoints", 1, models={"generator": model}, config=cfg)


def _save_hsp(root):
    model = _tiny_model(seed=4)
    cfg = {"model_type": "hierspeechpp", "model": to_dict(model.config),
           "data": {"ssl": {"random_tiny_dim": SSL_DIM, "layer": SSL_LAYER}}}
    return save_checkpoint(root / "checkpoints", 1, models={"generator": model}, config=cfg)


def _save_tts(root):
    ttv, synth = tiny_ttv_and_synth()
    save_checkpoint(root / "ttv" / "checkpoints", 1, models={"ttv": ttv},
                    config={"model_type": "hierspeechpp_ttv", "model": to_dict(ttv.config)})
    save_checkpoint(root / "syn" / "checkpoints", 1, models={"generator": synth},
                    config={"model_type": "hierspeechpp", "model": to_dict(synth.config)})
    return ttv, synth


def _save_speechsr(root, rate=24000):
    torch.manual_seed(0)
    model_cfg = {"target_rate": rate, "upsample_initial_channel": 8, "resblock_kernel_sizes": [3],
                 "resblock_dilation_sizes": [[1, 3, 5]]}
    model = SpeechSR.from_config(model_cfg)
    return save_checkpoint(root / "checkpoints", 1, models={"generator": model},
                           config={"model_type": "speechsr", "model": model_cfg}), model


def test_vits_text_to_speech(tmp_path):
    _save_vits(tmp_path)
    tts = load_pipeline(tmp_path)
    assert isinstance(tts, TextToSpeech) and tts.sample_rate == 22050
    assert tts.capabilities.speakers == ("ann", "bob", "cy") and not tts.capabilities.audio_prompt
    texts = ["Hello there.", "A second, longer sentence."]
    out = tts.synthesize(texts, speakers=["bob", 2], seed=5)
    assert [type(a) for a in out] == [Audio, Audio] and all(a.sample_rate == 22050 for a in out)
    # item i of a call == a one-item call with item_seed(seed, i), whatever else is in the call
    alone = tts.synthesize(texts[1:], speakers=[2], seed=tts.item_seed(5, 1))[0]
    np.testing.assert_array_equal(alone.waveform, out[1].waveform)
    with pytest.raises(ValueError, match="speaker"):
        tts.synthesize(["Hi."])  # multi-speaker model, no speaker
    # long text: spoken sentence by sentence with pauses, at most max_sentence_chars per pass
    long_text = " ".join(["The army found the people poor."] * 12)
    short = load_pipeline(tmp_path, ["infer.max_sentence_chars=64", "infer.noise_scale=0", "infer.noise_scale_w=0"])
    pieces = short.synthesize([long_text], speakers=["ann"])[0].waveform
    one = short.synthesize(["The army found the people poor."], speakers=["ann"])[0].waveform
    assert pieces.size > 6 * one.size


def test_hierspeechpp_voice_conversion(tmp_path):
    _save_hsp(tmp_path)
    vc = load_pipeline(tmp_path, ["infer.noise_scale=0.5", "infer.f0_method=dio"])  # dio: fast F0 for tests
    assert isinstance(vc, VoiceConversion) and vc.sample_rate == 16000 and vc.settings.noise_scale == 0.5
    source = load_audio(SOURCE, 16000)[:12000]
    out = vc.convert([Audio(source, 16000), SOURCE], [PROMPT])  # one prompt for all sources
    assert out[0].waveform.shape == source.shape and out[1].sample_rate == 16000
    again = vc.convert([SOURCE], [PROMPT], seed=vc.item_seed(vc.settings.seed, 1))[0]
    np.testing.assert_allclose(again.waveform, out[1].waveform, atol=1e-5)


def test_long_vc_source_is_converted_in_pieces(tmp_path):
    _save_hsp(tmp_path)
    source = np.concatenate([load_audio(SOURCE, 16000)] * 2)
    vc = load_pipeline(tmp_path, ["infer.chunk_seconds=1.5", "infer.f0_method=dio"])
    out = vc.convert([Audio(source, 16000)], [PROMPT])[0].waveform
    assert out.shape == source.shape and np.isfinite(out).all()
    assert abs(float(np.abs(out).max()) - 0.999) < 1e-4  # levelled once, as a whole
    pieces = split_points(source, 24000)
    assert pieces[0][0] == 0 and pieces[-1][1] == source.size and max(b - a for a, b in pieces) <= 24000
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))


def test_hierspeechpp_tts_two_checkpoints(tmp_path):
    ttv, synth = _save_tts(tmp_path)
    tts = load_pipeline({"pipeline": "hierspeechpp_tts",
                         "components": {"ttv": str(tmp_path / "ttv"), "synthesizer": str(tmp_path / "syn")}})
    assert isinstance(tts, TextToSpeech) and tts.capabilities.audio_prompt and tts.sample_rate == 16000
    out = tts.synthesize(["Hello there.", "Thus did this father comfort her?"], prompts=[PROMPT])
    direct = ZeroShotTTS(ttv, synth).synthesize_many(["Hello there.", "Thus did this father comfort her?"],
                                                     load_audio(PROMPT, 16000))
    for got, want in zip(out, direct):
        np.testing.assert_allclose(got.waveform, want, atol=1e-5)
    alone = tts.synthesize(["Thus did this father comfort her?"], prompts=[PROMPT], seed=tts.item_seed(1111, 1))[0]
    np.testing.assert_array_equal(alone.waveform, out[1].waveform)


def test_hierspeechpp_tts_with_sr_component(tmp_path):
    _save_tts(tmp_path)
    _, sr_model = _save_speechsr(tmp_path / "sr", 24000)
    spec = {"pipeline": "hierspeechpp_tts", "infer": {"output_rate": 24000, "scale_norm": "none"},
            "components": {"ttv": str(tmp_path / "ttv"), "synthesizer": str(tmp_path / "syn"),
                           "sr": str(tmp_path / "sr")}}
    tts = load_pipeline(spec)
    base = load_pipeline({**spec, "infer": {"scale_norm": "none"}, "components": {
        "ttv": str(tmp_path / "ttv"), "synthesizer": str(tmp_path / "syn")}})
    up = tts.synthesize(["Hello there."], prompts=[PROMPT])[0]
    at16 = base.synthesize(["Hello there."], prompts=[PROMPT])[0]
    assert up.sample_rate == 24000 and up.waveform.size == int(at16.waveform.size * 1.5)
    sr_model.eval()
    with torch.no_grad():
        want = sr_model(torch.from_numpy(at16.waveform).view(1, 1, -1)).view(-1).numpy()
    np.testing.assert_allclose(up.waveform, want, atol=1e-4)  # the component's own weights did the upsampling
    with pytest.raises(Exception, match="output_rate"):
        load_pipeline({**spec, "infer": {"output_rate": 48000}})


def test_speechsr_upsample(tmp_path):
    _, model = _save_speechsr(tmp_path, 24000)
    sr = load_pipeline(tmp_path)
    assert isinstance(sr, SpeechSuperResolution) and sr.sample_rate == 24000
    wav = load_audio(SOURCE, 16000)[:8000]
    out = sr.upsample([Audio(wav, 16000)])[0]
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(wav).view(1, 1, -1)).view(-1).numpy()
    assert out.sample_rate == 24000 and out.waveform.size == 12000
    np.testing.assert_allclose(out.waveform, want, atol=1e-4)
    released = load_pipeline({"pipeline": "speechsr", "infer": {"target_rate": 48000}})
    assert released.upsample([Audio(wav[:1600], 16000)])[0].waveform.size == 4800
    # a long input runs window by window (bounded memory) and gives what one pass gives
    windowed = load_pipeline(tmp_path, ["infer.window_seconds=0.1"]).upsample([Audio(wav, 16000)])[0].waveform
    assert windowed.size == 12000
    np.testing.assert_allclose(windowed, out.waveform, atol=1e-4)  # float rounding of other op shapes


def test_settings_are_validated_like_configs(tmp_path):
    _save_hsp(tmp_path)
    with pytest.raises(ConfigError, match=r"infer\.noise_scale"):
        load_pipeline(tmp_path, ["infer.noise_scael=0.5"])
    with pytest.raises(ConfigError, match="expected a number"):
        load_pipeline(tmp_path, ["infer.noise_scale=loud"])
    with pytest.raises(ConfigError, match="needs component"):
        load_pipeline({"pipeline": "hierspeechpp_tts", "components": {"ttv": str(tmp_path)}})


def test_two_checkpoint_spec_through_echelon_infer(tmp_path, capsys):
    ttv, synth = _save_tts(tmp_path)
    spec = tmp_path / "tts.json5"
    spec.write_text('{pipeline: "hierspeechpp_tts", components: {ttv: "ttv", synthesizer: "syn"},\n'
                    ' infer: {noise_scale_vc: 0.5}}  // relative to this file\n')
    texts = tmp_path / "texts.txt"
    texts.write_text("first|Hello there.\nsecond|?!\n")
    out = tmp_path / "out"
    rc = infer_cli.main(["--pipeline", str(spec), "--prompt", str(PROMPT), "--text_file", str(texts),
                         "--set", "infer.length_scale=1.2", "--output_dir", str(out)])
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert rc == 1 and summary.startswith("1 written, 1 failed: see ")
    (bad_list,) = out.glob("bad_items_*.tsv")
    assert summary.endswith(str(bad_list)) and "second" in bad_list.read_text()
    want = ZeroShotTTS(ttv, synth).synthesize("Hello there.", load_audio(PROMPT, 16000),
                                              TTSOptions(noise_scale_vc=0.5, length_scale=1.2))
    got = load_audio(out / "first.wav", None)
    assert got.size == want.size and np.abs(got - want).max() < 1e-3  # PCM16 rounding
    # A typo in a setting fails before anything runs, naming the closest key.
    rc = infer_cli.main(["--pipeline", str(spec), "--prompt", str(PROMPT), "--text", "Hi.",
                         "--set", "infer.noise_scale_cv=1", "--output_dir", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert rc == 2 and "infer.noise_scale_vc" in err and not (tmp_path / "out2").exists()


def test_vc_and_sr_runners_through_echelon_infer(tmp_path, capsys):
    _save_hsp(tmp_path / "hsp")
    flac = tmp_path / "in" / "a.flac"
    wav = tmp_path / "in" / "a.wav"
    save_audio(flac, load_audio(SOURCE, 16000)[:9000], 16000)
    save_audio(wav, load_audio(SOURCE, 16000)[:7000], 16000)
    out = tmp_path / "vc"
    # batches of 2: the first holds a missing file, so its items are retried one by one
    rc = infer_cli.main(["--ckpt_dir", str(tmp_path / "hsp"), "--source", str(flac), str(tmp_path / "no.wav"),
                         str(wav), "--prompt", str(PROMPT), "--output_dir", str(out), "--noise_scale", "0.8",
                         "--f0_method", "dio", "--batch_size", "2"])
    assert rc == 1 and capsys.readouterr().out.strip().splitlines()[-1].startswith("2 written, 1 failed: see ")
    assert sorted(p.name for p in out.glob("*.wav")) == ["a_flac_to_reference_4.wav", "a_wav_to_reference_4.wav"]
    vc = load_pipeline(tmp_path / "hsp", ["infer.noise_scale=0.8", "infer.f0_method=dio"])
    for name, source, index in (("a_flac", flac, 0), ("a_wav", wav, 2)):  # item i is seeded as when alone
        alone = vc.convert([source], [PROMPT], seed=vc.item_seed(vc.settings.seed, index))[0].waveform
        assert np.abs(load_audio(out / f"{name}_to_reference_4.wav", None) - alone).max() < 1e-3
    _save_speechsr(tmp_path / "sr")
    rc = infer_cli.main(["--ckpt_dir", str(tmp_path / "sr"), "--inputs", str(flac), "--output_dir",
                         str(tmp_path / "up")])
    assert rc == 0 and load_audio(tmp_path / "up" / "a.wav", None).size == 9000 * 3 // 2
