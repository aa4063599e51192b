"""Feature extraction with the registered mel/linear/f0/ssl extractors: bad items listed with reasons, every other
file processed, resume, atomic files, batched SSL equal to unbatched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf
import torch

from bins.extract_features import main as extract_cli
from processors.audio import load_audio
from processors.data.extract import extract_features
from processors.data.manifest import ManifestEntry
from processors.f0 import to_log_f0, yaapt_f0
from processors.features import build_extractor, feature_path
from processors.features.ssl import SSLFeature
from processors.spectrogram import HierSpeechLogMel
from processors.ssl import build_random_ssl, official_ssl_input
from tests.helpers import MINI_CORPUS

SOURCES = [
    MINI_CORPUS / "vctk" / "p225" / "p225_003.wav",
    MINI_CORPUS / "vctk" / "p227" / "p227_003.wav",
    MINI_CORPUS / "ljspeech" / "LJ001-0002.wav",  # 22.05 kHz: resampled on load
]


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Three real 0.7-1.0 s clips, one empty wav and one corrupt wav."""
    root = tmp_path / "in"
    root.mkdir()
    for n, src in enumerate(SOURCES):
        wav, sr = sf.read(str(src), dtype="float32")
        sf.write(str(root / f"good{n}.wav"), wav[: int((0.7 + 0.15 * n) * sr)], sr)
    (root / "empty.wav").write_bytes(b"")
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(64))
    return root


def _load(path: Path) -> torch.Tensor:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_cli_on_folder_with_corrupt_and_empty_wav(folder, tmp_path, capsys):
    out = tmp_path / "features"
    args = ["--input_dir", str(folder), "--out_dir", str(out), "--features", "mel,linear,f0", "--nj", "1"]
    code = extract_cli(args)
    assert code == 1  # bad items are a failure unless allowed, as in every batch CLI
    assert "3 computed, 0 already done, 2 bad" in capsys.readouterr().out
    rows = [line.split("\t") for line in (out / "bad_items.tsv").read_text().splitlines()]
    run_lists = sorted((out / "runs").glob("*/bad_items.shard-*.tsv"))
    assert len(run_lists) == 1 and run_lists[0].read_text() == (out / "bad_items.tsv").read_text()
    assert sorted(r[0] for r in rows) == ["corrupt", "empty"]
    reasons = {r[0]: r[2] for r in rows}
    assert "corrupt" in reasons["corrupt"] and "empty" in reasons["empty"]
    for n in range(3):
        wav = load_audio(folder / f"good{n}.wav", 16000)
        frames = len(wav) // 320
        mel = _load(feature_path(out, "mel", f"good{n}"))
        assert mel.shape == (80, frames)
        torch.testing.assert_close(mel, HierSpeechLogMel()(torch.from_numpy(wav)[None])[0])
        assert _load(feature_path(out, "linear", f"good{n}")).shape == (641, frames)
        f0 = _load(feature_path(out, "f0", f"good{n}"))
        assert f0.shape == (4 * frames,)
        torch.testing.assert_close(f0, to_log_f0(yaapt_f0(wav))[: 4 * frames])
    assert not list(out.rglob("*.tmp"))  # no temporary files left

    # Resume: nothing recomputed, files untouched; the bad items are retried and listed again.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    assert extract_cli(["--input_dir", str(folder), "--out_dir", str(out), "--features", "mel,linear,f0", "--strict"]) == 1
    assert "0 computed, 3 already done, 2 bad" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    assert len(list((out / "runs").glob("*/bad_items.shard-*.tsv"))) == 2  # the first run's list is kept
    assert extract_cli(["--input_dir", str(folder), "--out_dir", str(out), "--features", "mel,linear,f0",
                        "--allow_failures"]) == 0  # the user accepted the listed failures


def test_partial_items_resume_only_missing_kinds_in_parallel(folder, tmp_path):
    entries = [ManifestEntry(f"good{n}", str(folder / f"good{n}.wav"), "s", "", 0.0, 0) for n in range(3)]
    out = tmp_path / "features"
    first = extract_features(entries, out, [build_extractor("mel")], num_workers=1)
    assert sorted(first.done) == ["good0", "good1", "good2"] and not first.bad
    mel_stamp = feature_path(out, "mel", "good1").stat().st_mtime_ns
    feature_path(out, "mel", "good2").unlink()  # as if interrupted before this file
    second = extract_features(entries, out, [build_extractor("mel"), build_extractor("f0", {"method": "dio"})],
                              num_workers=2)
    assert sorted(second.done) == ["good0", "good1", "good2"]
    assert feature_path(out, "mel", "good1").stat().st_mtime_ns == mel_stamp  # not rewritten
    assert all(feature_path(out, k, e.id).is_file() for k in ("mel", "f0") for e in entries)
    third = extract_features(entries, out, [build_extractor("mel"), build_extractor("f0", {"method": "dio"})])
    assert sorted(third.skipped) == ["good0", "good1", "good2"] and not third.done


def test_ssl_features_batched_and_bad_items_merged_across_manifests(folder, tmp_path):
    out = tmp_path / "features"
    (out).mkdir()
    (out / "bad_items.tsv").write_text("other_split_item\t/x.wav\tAudioError: kept from another manifest\n")
    extractor = build_random_ssl(layer=2, num_layers=2, seed=0)
    entries = [ManifestEntry(f"good{n}", str(folder / f"good{n}.wav"), "s", "", 0.7 + 0.15 * n, 0) for n in range(3)]
    entries.append(ManifestEntry("corrupt", str(folder / "corrupt.wav"), "s", "", 0.0, 0))
    report = extract_features(entries, out, [SSLFeature(module=extractor)], batch_size=8)
    assert sorted(report.done) == ["good0", "good1", "good2"] and list(report.bad) == ["corrupt"]
    for n in range(3):
        wav = load_audio(folder / f"good{n}.wav", 16000)
        feats = _load(feature_path(out, "ssl", f"good{n}"))
        alone, _ = extractor(official_ssl_input(torch.from_numpy(wav)[None]))
        assert feats.shape == (extractor.dim, len(wav) // 320)
        torch.testing.assert_close(feats, alone[0, :, : len(wav) // 320], rtol=1e-4, atol=1e-4)
    lines = (out / "bad_items.tsv").read_text().splitlines()
    assert lines[0].startswith("other_split_item\t") and lines[1].startswith("corrupt\t") and len(lines) == 2


def test_unknown_feature_setting_and_missing_ssl_model_are_usage_errors(folder, tmp_path, capsys):
    assert extract_cli(["--input_dir", str(folder), "--out_dir", str(tmp_path), "--features", "mfcc"]) == 2
    assert "mfcc" in capsys.readouterr().err
    assert extract_cli(["--input_dir", str(folder), "--out_dir", str(tmp_path), "--features", "f0", "--set", "f0.metod=dio"]) == 2
    assert "'f0' has no setting 'metod'; did you mean 'method'" in capsys.readouterr().err
    assert extract_cli(["--input_dir", str(folder), "--out_dir", str(tmp_path), "--features", "mel",
                        "--set", "f0.method=dio"]) == 2
    assert "not among --features" in capsys.readouterr().err
    missing = tmp_path / "no_such_model"
    assert extract_cli(["--input_dir", str(folder), "--out_dir", str(tmp_path), "--features", "ssl",
                        "--ssl_model", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_mel_filterbank_follows_the_sample_rate_within_one_process():
    """Front ends are cached per extractor; a second rate must not reuse the first rate's filterbank."""
    wav = load_audio(SOURCES[2], 22050)[:11025]
    x = torch.from_numpy(wav)[None]
    for rate in (16000, 22050):
        mel = build_extractor("mel", {"sample_rate": str(rate)}).extract(wav)
        torch.testing.assert_close(mel, HierSpeechLogMel(sample_rate=rate)(x)[0], rtol=0, atol=0)


def test_other_settings_on_existing_features_are_refused(folder, tmp_path):
    entries = [ManifestEntry("good0", str(folder / "good0.wav"), "s", "", 0.0, 0)]
    out = tmp_path / "features"
    extract_features(entries, out, [build_extractor("mel")])
    with pytest.raises(ValueError, match="n_mels.*--overwrite"):
        extract_features(entries, out, [build_extractor("mel", {"n_mels": 40})])
    report = extract_features(entries, out, [build_extractor("mel", {"n_mels": 40})], overwrite=True)
    assert report.done == ["good0"] and _load(feature_path(out, "mel", "good0")).shape[0] == 40


def test_list_imports_every_registered_feature(capsys):
    assert extract_cli(["--list"]) == 0
    listed = {line.split(":")[0] for line in capsys.readouterr().out.splitlines()}
    assert {"mel", "linear", "f0", "ssl"} <= listed


def test_ssl_feature_refuses_settings_its_model_cannot_honour():
    """hop_length must be the encoder's frame stride and sample_rate 16 kHz, else the features would be
    silently mis-sized (N // hop frames of a 320-sample-stride model) or fed audio at the wrong rate."""
    from processors.features.base import FeatureError
    from processors.features.ssl import SSLFeature, SSLSettings
    from processors.ssl import build_random_ssl

    module = build_random_ssl()
    assert SSLFeature(None, module=module).settings.hop_length == 320
    for settings in (SSLSettings(hop_length=160), SSLSettings(sample_rate=22050)):
        with pytest.raises(FeatureError, match="needs sample_rate=16000 and hop_length=320"):
            SSLFeature(settings, module=module)
