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
    """A lifeiteng/Amphion-format file + its symbol file + Amphion args.json -> zero-shot TTS (tiny random codec).

    Every size (quantizers, vocabularies, width) comes from the fixture's stored ``config``: the codec is seen
    through :class:`_FixtureCodec`, which gives exactly the fixture model's codebook count and vocabulary."""
    import json

    from models.base.tasks import Audio
    from models.tts.valle.inference import ValleTTS
    from models.tts.valle.text import build_symbols, phoneme_tokens
    from tests.helpers import load_fixture

    fixture = load_fixture("valle/valle_tiny.pt")
    c = fixture["config"]
    fitted = _FixtureCodec(codec, c["num_quantizers"], c["num_audio_tokens"])
    monkeypatch.setattr("models.tts.valle.inference.EncodecCodec.load", lambda *a, **k: fitted)
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
    assert tts.model.num_quantizers == c["num_quantizers"] and tts.codec is fitted
    prompt = Audio(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    out = tts.synthesize([text], [prompt], [prompt_text], seed=0)
    assert out[0].sample_rate == codec.sample_rate and out[0].waveform.size > 0
    assert out[0].waveform.size % codec.hop_length == 0 and fitted.decoded  # whole codec frames, via the codec
    # echelon-infer --model_type valle finds args.json and the symbol file beside a reference checkpoint
    folder = tmp_path / "checkpoint" / "final_epoch-0001"
    folder.mkdir(parents=True)
    torch.save(fixture["state_dict"], folder / "pytorch_model.bin")
    assert ValleTTS.from_path(folder).table.symbols == symbols
    with pytest.raises(Exception, match="elsewhere: no such checkpoint"):  # args.json + symbols found above it
        ValleTTS.from_path(tmp_path / "elsewhere")
    (tmp_path / "args.json").unlink()
    with pytest.raises(Exception, match="neither an Echelon checkpoint"):
        ValleTTS.from_path(folder)


class _FixtureCodec:
    """The tiny random codec seen with the fixture model's ``num_quantizers`` codebooks of ``vocab`` entries.

    Encoding folds the codec's codebooks onto the model's (cycling them when the model has more) and its
    codes into ``vocab``; decoding maps the model's codebooks back onto the codec's count the same way."""

    def __init__(self, codec, num_quantizers: int, vocab: int):
        self.inner, self.num_quantizers, self.vocab = codec, num_quantizers, vocab
        self.sample_rate, self.hop_length = codec.sample_rate, codec.hop_length
        self.decoded = 0

    def encode(self, wav, rate):
        codes = self.inner.encode(wav, rate)  # (frames, Q_codec)
        return codes[:, [q % codes.shape[1] for q in range(self.num_quantizers)]] % self.vocab

    def decode(self, codes):
        """``codes (frames, num_quantizers)`` -> the inner codec's waveform."""
        assert codes.shape[1] == self.num_quantizers and int(codes.max()) < self.vocab
        self.decoded += 1
        inner_q = self.inner.num_quantizers
        columns = [q % self.num_quantizers for q in range(inner_q)]
        return self.inner.decode(codes[:, columns] % self.inner.codebook_size)

    def to(self, device):
        return self
