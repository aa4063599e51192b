"""Lhotse Shar shards from bins.extract_features --format shar: audio, features and supervision round-trip through
Lhotse's reader; a rerun skips finished shards and rewrites only a missing one; two processes write the same
shards as one; bad items are listed; an existing per-item feature folder converts to the same shards."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet

from bins.extract_features import main as extract_cli
from processors.data.shar import list_shards
from processors.data.shar_reader import cut_array, cut_audio
from processors.features import load_feature
from tests.helpers import write_clip_manifest



@pytest.fixture()
def manifest(tmp_path) -> Path:
    """5 short real clips (0.3 s, with text, speaker and extra) and one unreadable file."""
    return write_clip_manifest(tmp_path, 5, 0.3, bad=("bad",), labelled=True)


def _cli(manifest, out, *extra):
    return extract_cli(["--manifest", str(manifest), "--out_dir", str(out), "--features", "mel", "--format", "shar",
                        "--shard_size", "2", "--audio_format", "wav", "--allow_failures", *extra])


def _digests(folder: Path):
    """Content hash per Shar file (gzip's header holds a time stamp: the cuts are compared uncompressed)."""
    read = lambda p: gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()  # noqa: E731
    return {p.name: hashlib.sha1(read(p)).hexdigest() for p in sorted((folder / "shar").iterdir())}


def test_shards_hold_audio_features_and_supervision(manifest, tmp_path, capsys):
    assert _cli(manifest, tmp_path / "shar") == 0
    assert "1 bad" in capsys.readouterr().out.strip().splitlines()[-1]
    shards = list_shards(tmp_path / "shar")
    assert sum(s.items for s in shards) == 5 and len(shards) >= 2
    assert (tmp_path / "shar/bad_items.tsv").read_text().startswith("bad\t")
    cuts = list(CutSet.from_shar(in_dir=tmp_path / "shar/shar"))
    assert sorted(c.id for c in cuts) == [f"c{n}" for n in range(5)]
    for cut in cuts:
        n = int(cut.id[1:])
        sup = cut.supervisions[0]
        assert (sup.text, sup.speaker, sup.custom["extra"]) == (f"text {n}", f"spk{n % 2}", {"n": n})
        wav, sr = sf.read(str(tmp_path / "audio" / f"c{n}.wav"), dtype="float32")
        assert cut.sampling_rate == 16000 == sr and abs(cut.duration - 0.3) < 1e-3
        np.testing.assert_allclose(cut.load_audio()[0], wav, atol=1e-6)
        np.testing.assert_array_equal(cut_audio(cut), cut.load_audio()[0])  # the fast path decodes the same
        mel = cut.load_custom("mel")  # time first (Lhotse's layout), (T, 80); cut_array: Echelon's (80, T)
        assert mel.shape == (len(wav) // 320, 80) and np.isfinite(mel).all()
        np.testing.assert_array_equal(cut_array(cut, "mel"), mel.T)


def test_rerun_skips_finished_shards_and_rewrites_a_missing_one(manifest, tmp_path, capsys):
    out = tmp_path / "shar"
    _cli(manifest, out)
    before = _digests(out)
    capsys.readouterr()
    assert _cli(manifest, out) == 0
    assert "0 shards written, 3 already complete" in capsys.readouterr().out
    (out / "shards/shard.000001.json").unlink()  # as if the run died before shard 1 was recorded
    for path in out.glob("shar/*.000001.*"):
        path.write_bytes(b"truncated")
    assert _cli(manifest, out) == 0
    assert "1 shard written, 2 already complete" in capsys.readouterr().out
    assert _digests(out) == before  # idempotent: the same bytes again
    assert not list(out.glob(".tmp-*"))


def test_two_processes_write_the_shards_one_process_writes(manifest, tmp_path, capsys):
    _cli(manifest, tmp_path / "one")
    assert _cli(manifest, tmp_path / "two", "--shard", "0/2") == 0
    assert "merge when all 2 are done" in capsys.readouterr().out
    assert _cli(manifest, tmp_path / "two", "--merge") == 4  # shard 1 missing: the merge refuses
    assert _cli(manifest, tmp_path / "two", "--shard", "1/2") == 0
    assert _cli(manifest, tmp_path / "two", "--merge") == 0
    assert _digests(tmp_path / "one") == _digests(tmp_path / "two")
    assert "bad" in (tmp_path / "two/bad_items.tsv").read_text()


def test_existing_feature_folder_converts_to_the_same_shards(manifest, tmp_path):
    feats = tmp_path / "features"
    extract_cli(["--manifest", str(manifest), "--out_dir", str(feats), "--features", "mel", "--allow_failures"])
    _cli(manifest, tmp_path / "computed")
    assert _cli(manifest, tmp_path / "converted", "--from_features", str(feats)) == 0
    computed = {c.id: cut_array(c, "mel") for c in CutSet.from_shar(in_dir=tmp_path / "computed/shar")}
    converted = {c.id: cut_array(c, "mel") for c in CutSet.from_shar(in_dir=tmp_path / "converted/shar")}
    assert sorted(computed) == sorted(converted)
    for item_id, mel in converted.items():
        assert torch.equal(torch.from_numpy(mel), load_feature(feats, "mel", item_id))
        np.testing.assert_array_equal(mel, computed[item_id])


def test_audio_rate_of_a_training_config(manifest, tmp_path, capsys):
    """``--audio_rate_of CONFIG`` stores the audio at the rate that family trains at, defaults included (WaveGrad 2's
    sits in model.sample_rate); with --audio_rate too it is one line."""
    from models.base.experiment_config import training_audio_rate
    from tests.helpers import REPO_ROOT
    from utils.config import load_config, validate
    from utils.registry import get

    def rate(path):
        raw = load_config(REPO_ROOT / path, [])
        return training_audio_rate(validate(raw, get("trainer", raw["model_type"]).config_class))

    assert rate("egs/tts/wavegrad2/conf/wavegrad2_tiny.json5") == 24000  # no data.sample_rate in that file
    assert rate("egs/tts/vits/conf/vits_ljspeech.json5") == 22050
    assert rate("egs/tts/hierspeechpp/conf/speechsr_tiny.json5") == 48000
    assert rate("egs/tts/hierspeechpp/conf/ttv_tiny.json5") is None  # features only: the shards keep their rate
    config = REPO_ROOT / "egs/tts/wavegrad2/conf/wavegrad2_tiny.json5"
    assert _cli(manifest, tmp_path / "shar", "--audio_rate_of", str(config)) == 0
    cuts = list(CutSet.from_shar(in_dir=tmp_path / "shar/shar"))
    assert cuts and all(cut.sampling_rate == 24000 for cut in cuts)
    capsys.readouterr()
    assert _cli(manifest, tmp_path / "again", "--audio_rate_of", str(config), "--audio_rate", "16000") == 2
    assert capsys.readouterr().err.strip().endswith("give --audio_rate or --audio_rate_of, not both")
