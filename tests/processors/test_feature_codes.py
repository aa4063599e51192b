"""Integer features (codec codes) through the CodeExtractor interface: stored as int16, read back exactly, and
values that are not integers or do not fit refused per item with a reason; plus manifest ``extra`` round trips."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import pytest
import soundfile as sf
import torch

from processors.data.extract import extract_features
from processors.data.manifest import ManifestEntry, ManifestError, read_manifest, write_manifest
from processors.features import CodeExtractor, build_extractor, feature_path, load_feature
from tests.helpers import MINI_CORPUS
from utils.registry import register


@dataclass(frozen=True)
class MuLawSettings:
    sample_rate: int = 16000
    hop_length: int = 320
    levels: int = 256
    offset: int = 0  # added to every code: a large offset makes codes that do not fit int16


@register("feature", "test_mulaw_codes")
class MuLawCodes(CodeExtractor):
    """A stand-in codec: two 'codebooks' = mu-law codes of the first and middle sample of every hop, ``(2, T)``."""

    Settings = MuLawSettings

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> List[torch.Tensor]:
        s, out = self.settings, []
        mu = s.levels - 1
        for wav in wavs:
            frames = torch.from_numpy(wav[: len(wav) // s.hop_length * s.hop_length]).view(-1, s.hop_length)
            picks = torch.stack([frames[:, 0], frames[:, s.hop_length // 2]])  # (2, T)
            companded = torch.sign(picks) * torch.log1p(mu * picks.abs()) / np.log1p(mu)
            out.append(((companded + 1) / 2 * mu).round().long() + s.offset)
        return out


def _mulaw_numpy(wav: np.ndarray, hop: int = 320, mu: int = 255) -> np.ndarray:
    frames = wav[: len(wav) // hop * hop].reshape(-1, hop)
    x = np.stack([frames[:, 0], frames[:, hop // 2]]).astype(np.float64)
    return np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) + 1) / 2 * mu).astype(np.int64)


@pytest.fixture()
def entries(tmp_path):
    out = []
    for n, src in enumerate(sorted((MINI_CORPUS / "vctk").rglob("*.wav"))[:3]):
        wav, sr = sf.read(str(src), dtype="float32")
        sf.write(str(tmp_path / f"u{n}.wav"), wav[: sr // 2], sr)
        out.append(ManifestEntry(f"u{n}", str(tmp_path / f"u{n}.wav"), "s", "", 0.5, sr))
    return out


def test_integer_codes_are_stored_as_int16_and_read_back_exactly(entries, tmp_path):
    from processors.audio import load_audio

    out = tmp_path / "features"
    report = extract_features(entries, out, [build_extractor("test_mulaw_codes")], batch_size=2)
    assert sorted(report.done) == ["u0", "u1", "u2"] and not report.bad
    for entry in entries:
        codes = load_feature(out, "test_mulaw_codes", entry.id)
        expected = _mulaw_numpy(load_audio(entry.path, 16000))
        assert codes.dtype == torch.int16 and codes.shape == expected.shape
        np.testing.assert_array_equal(codes.long().numpy(), expected)
        with zipfile.ZipFile(feature_path(out, "test_mulaw_codes", entry.id)) as archive:  # 2 bytes a code on disk
            data = [i.file_size for i in archive.infolist() if i.filename.split("/")[-2:-1] == ["data"]]
        assert data == [codes.numel() * 2]
    assert json.loads((out / "test_mulaw_codes" / "feature.json").read_text())["dtype"] == "int16"


def test_codes_that_do_not_fit_or_are_not_integers_are_bad_items(entries, tmp_path):
    report = extract_features(entries[:1], tmp_path / "wide", [build_extractor("test_mulaw_codes", {"offset": 40000})])
    assert "do not fit torch.int16" in report.bad["u0"] and not feature_path(tmp_path / "wide", "test_mulaw_codes", "u0").exists()

    class FloatCodes(MuLawCodes):
        def extract_batch(self, wavs):
            return [c.float() for c in super().extract_batch(wavs)]

    report = extract_features(entries[:1], tmp_path / "float", [FloatCodes()])
    assert "integer feature" in report.bad["u0"]


def test_manifest_extra_round_trips_and_other_fields_stay_strict(tmp_path):
    extra = {"phone_durations": [3, 5, 2], "aligner": {"name": "mfa", "score": -1.5}}
    entries = [ManifestEntry("a", "a.wav", "s", "hi", 1.0, 16000, extra=extra), ManifestEntry("b", "b.wav", "s", "", 1.0, 16000)]
    path = write_manifest(entries, tmp_path / "m.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["extra"] == extra and "extra" not in rows[1]  # omitted when empty: old manifests unchanged
    back = read_manifest(path)
    assert back[0].extra == extra and back[1].extra == {}
    for bad_row, message in (({"id": "c", "path": "c.wav", "extra": [1, 2]}, "'extra' must be a JSON object"),
                             ({"id": "c", "path": "c.wav", "durations": [1]}, r"unknown field \['durations'\]")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(path.read_text() + json.dumps(bad_row) + "\n")
        with pytest.raises(ManifestError, match=rf"bad.jsonl:3: {message}"):
            read_manifest(bad)
