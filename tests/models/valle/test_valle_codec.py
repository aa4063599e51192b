"""EnCodec through transformers as a frozen codec (tiny random config: no hub), and the codes extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from processors.codec import CodecError, EncodecCodec, load_codes
from processors.data.manifest import ManifestEntry
from tests.helpers import MINI_CORPUS


@pytest.fixture(scope="module")
def codec():
    torch.set_num_threads(1)
    return EncodecCodec.load("tiny-random")


def test_tiny_codec_layout_and_round_trip(codec):
    assert (codec.sample_rate, codec.frame_rate, codec.num_quantizers, codec.codebook_size) == (24000, 75.0, 8, 1024)
    assert all(not p.requires_grad for p in codec.model.parameters()) and not codec.model.training
    t = np.arange(24000) / 24000
    wav = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + t)) * (0.2 + t)).astype(np.float32)
    codes = codec.encode(wav, 24000)
    assert codes.shape == (75, 8) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < 1024
    assert len({tuple(row) for row in codes[:, :2].tolist()}) > 10  # codes follow the signal
    # 16 kHz input is resampled to 24 kHz first: same frame count for the same duration
    assert codec.encode(wav[::3].copy(), 8000).shape == (75, 8)
    audio = codec.decode(codes)
    assert audio.shape == (24000,) and audio.dtype == np.float32 and np.isfinite(audio).all()


def test_offline_hub_id_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CodecError) as err:
        EncodecCodec.load("facebook/encodec_24khz_not_cached_here")
    assert "\n" not in str(err.value) and "encodec_24khz_not_cached_here" in str(err.value)


def test_registered_codes_feature_through_the_generic_extraction(codec, tmp_path):
    from processors.audio import load_audio
    from processors.data.extract import extract_features
    from processors.features import build_extractor

    wavs = sorted((MINI_CORPUS / "ljspeech").glob("*.wav"))[:2]
    entries = [ManifestEntry(w.stem, str(w), "lj", "", 1.0, 22050) for w in wavs]
    entries.append(ManifestEntry("missing", str(tmp_path / "nope.wav"), "lj", "", 1.0, 22050))
    extractor = build_extractor("encodec_codes", {"model": "tiny-random"})
    report = extract_features(entries, tmp_path, [extractor])
    assert sorted(report.done) == sorted(e.id for e in entries[:2]) and "missing" in report.bad
    stored = torch.load(tmp_path / "encodec_codes" / f"{entries[0].id}.pt", weights_only=True)
    assert stored.dtype == torch.int16 and stored.shape[0] == 8  # (Q, frames), 2 bytes a code
    expected = codec.encode(load_audio(entries[0].path, 24000), 24000)
    assert torch.equal(load_codes(tmp_path, entries[0].id), expected)  # read back as (frames, Q)
    again = extract_features(entries, tmp_path, [extractor])
    assert sorted(again.skipped) == sorted(e.id for e in entries[:2]) and not again.done
    with pytest.raises(Exception, match="sample_rate"):
        build_extractor("encodec_codes", {"model": "tiny-random", "sample_rate": 16000}).extract_batch([np.zeros(1600, np.float32)])


def test_reference_checkpoint_with_symbol_file_synthesizes(codec, tmp_path, monkeypatch):
    """A lifeiteng/Amphion-format file + its symbol file + Amphion args.json -> zero-shot TTS (tiny random codec)."""
    import json

    from models.base.tasks import Audio
    from models.tts.valle.inference import ValleTTS
    from models.tts.valle.text import build_symbols, phoneme_tokens
    from tests.helpers import load_fixture

    fixture = load_fixture("valle/valle_tiny.pt")
    c = fixture["config"]
    prompt_text, text = "Oh.", "A tea."  # few distinct phonemes: fits any small text vocabulary
    tokens = sorted(set(phoneme_tokens(prompt_text) + phoneme_tokens(text)))
    (tmp_path / "symbols.dict").write_text("".join(f"{s}\t{i}\n" for i, s in enumerate(["<eps>", *tokens])))
    symbols = build_symbols([["<eps>", *tokens]])
    assert len(symbols) <= c["num_text_tokens"]
    model_block = {"decoder_dim": c["d_model"], "nhead": c["nhead"], "num_decoder_layers": c["num_layers"],
                   "num_quantizers": c["num_quantizers"], "text_token_num": c["num_text_tokens"],
                   "audio_token_num": c["num_audio_tokens"], "prefix_mode": 1, "add_prenet": False}  # fmt: skip
    (tmp_path / "args.json").write_text(json.dumps({"model": model_block}))
    torch.save({"model": fixture["state_dict"]}, tmp_path / "epoch-1.pt")
    tts = ValleTTS.from_reference(tmp_path / "epoch-1.pt", tmp_path / "symbols.dict", args_json=tmp_path / "args.json",
                                  codec="tiny-random")  # fmt: skip
    if c["num_audio_tokens"] != codec.codebook_size:  # the fixture's tiny vocabulary: keep prompt codes in range
        tts.codec = _ClampedCodec(codec, c["num_audio_tokens"])
    prompt = Audio(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    out = tts.synthesize([text], [prompt], [prompt_text], seed=0)
    assert out[0].sample_rate == 24000 and out[0].waveform.size > 0 and out[0].waveform.size % 320 == 0
    # echelon-infer --model_type valle finds args.json and the symbol file beside a reference checkpoint
    folder = tmp_path / "checkpoint" / "final_epoch-0001"
    folder.mkdir(parents=True)
    torch.save(fixture["state_dict"], folder / "pytorch_model.bin")
    from models.tts.valle.inference import ValleTTS

    monkeypatch.setattr("models.tts.valle.inference.EncodecCodec.load", lambda *a, **k: codec)
    assert ValleTTS.from_path(folder).table.symbols == symbols
    with pytest.raises(Exception, match="elsewhere: no such checkpoint"):  # args.json + symbols found above it
        ValleTTS.from_path(tmp_path / "elsewhere")
    (tmp_path / "args.json").unlink()
    with pytest.raises(Exception, match="neither an Echelon checkpoint"):
        ValleTTS.from_path(folder)


class _ClampedCodec:
    """The tiny random codec with codes folded into a smaller vocabulary (the fixture model has V < 1024)."""

    def __init__(self, codec, vocab):
        self.inner, self.vocab = codec, vocab
        self.sample_rate, self.num_quantizers = codec.sample_rate, codec.num_quantizers

    def encode(self, wav, rate):
        return self.inner.encode(wav, rate) % self.vocab

    def decode(self, codes):
        return self.inner.decode(codes)

    def to(self, device):
        return self
