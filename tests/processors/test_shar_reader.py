"""processors.data.shar_reader: the cuts it reads from Lhotse Shar shards are the ones Lhotse's own reader gives
(ids, manifests, audio, arrays, missing fields), for shards written by Lhotse's SharWriter, including ids that make
``tarfile`` write PAX headers; damaged or mismatched shards fail with one line naming the file."""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.shar import SharWriter

from processors.data.shar_reader import SharReadError, cut_array, cut_audio, iter_shar_cuts, iter_tar_members

LONG_ID = "spk_é_" + "x" * 120  # > 100 characters and not ASCII: tarfile writes a PAX header for it


def _cut(cut_id: str, seconds: float, rng: np.random.Generator, with_f0: bool = True, arrays: bool = True) -> MonoCut:
    buffer = io.BytesIO()
    sf.write(buffer, (rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32), 16000, format="WAV",
             subtype="PCM_16")
    recording = Recording.from_bytes(buffer.getvalue(), recording_id=cut_id)
    cut = MonoCut(id=cut_id, start=0.0, duration=recording.duration, channel=0, recording=recording,
                  supervisions=[SupervisionSegment(id=cut_id, recording_id=cut_id, start=0.0,
                                                   duration=recording.duration, text=f"text of {cut_id}", speaker="s")])
    frames = int(seconds * 50) + 1
    if arrays:
        cut = cut.attach_tensor("mel", rng.standard_normal((80, frames)).astype(np.float32))
    return cut.attach_tensor("f0", rng.uniform(80, 300, frames).astype(np.float32)) if arrays and with_f0 else cut


@pytest.fixture()
def shar_fields(tmp_path):
    """Two shards of 3 cuts written by Lhotse's SharWriter: one cut with a PAX-header id, one without F0."""
    rng = np.random.default_rng(0)
    cuts = [_cut("a", 0.3, rng), _cut(LONG_ID, 0.5, rng), _cut("c", 0.2, rng, with_f0=False),
            *(_cut(f"d{i}", 0.1 + 0.1 * i, rng) for i in range(3))]
    with SharWriter(str(tmp_path), fields={"recording": "flac", "mel": "numpy", "f0": "numpy"}, shard_size=3) as w:
        for cut in cuts:
            w.write(cut)
    return {field: sorted(str(p) for p in tmp_path.glob(f"{field}.*")) for field in ("cuts", "recording", "mel", "f0")}


def test_reads_the_cuts_lhotse_reads(shar_fields):
    ours = list(iter_shar_cuts(shar_fields))
    lhotse = list(CutSet.from_shar(fields=shar_fields))
    assert [c.id for c in ours] == [c.id for c in lhotse] == ["a", LONG_ID, "c", "d0", "d1", "d2"]
    for mine, theirs in zip(ours, lhotse):
        assert mine.to_dict() == theirs.to_dict()  # manifests, attached bytes and storage types alike
        assert (mine.shard_origin, mine.shar_epoch) == (theirs.shard_origin, theirs.shar_epoch)
        np.testing.assert_array_equal(mine.load_audio(), theirs.load_audio())
        assert mine.has_custom("f0") == theirs.has_custom("f0") == (mine.id != "c")
        np.testing.assert_array_equal(cut_audio(mine), theirs.load_audio()[0])
        for name in ("mel", "f0") if mine.id != "c" else ("mel",):
            np.testing.assert_array_equal(mine.load_custom(name), theirs.load_custom(name))
        assert cut_array(mine, "f0") is None if mine.id == "c" else cut_array(mine, "f0").dtype == np.float32


@pytest.mark.parametrize("array", [np.arange(24, dtype=np.float16).reshape(2, 3, 4),
                                   np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
                                   np.array([1.5, -2.0], dtype=">f8"), np.zeros((0, 80), np.float32)],
                         ids=["float16-3d", "fortran-int32", "big-endian", "empty"])
def test_cut_array_gives_what_load_custom_gives(array, tmp_path):
    rng = np.random.default_rng(1)
    with SharWriter(str(tmp_path), fields={"recording": "wav", "x": "numpy"}, shard_size=None) as w:
        w.write(_cut("a", 0.1, rng, arrays=False).attach_tensor("x", array))
    (cut,) = iter_shar_cuts({"cuts": [str(tmp_path / "cuts.jsonl.gz")], "x": [str(tmp_path / "x.tar")]})
    mine, theirs = cut_array(cut, "x"), cut.load_custom("x")
    np.testing.assert_array_equal(mine, theirs)
    assert (mine.dtype, mine.shape, mine.flags.f_contiguous, mine.flags.writeable) == \
        (theirs.dtype, theirs.shape, theirs.flags.f_contiguous, True)
    # a TemporalArray (what write_shar stores for time-indexed features): time first in the shard, last here
    (tmp_path / "t").mkdir()
    with SharWriter(str(tmp_path / "t"), fields={"recording": "wav", "x": "numpy"}, shard_size=None) as w:
        w.write(_cut("a", 0.1, rng, arrays=False).attach_tensor("x", array, frame_shift=0.1 / max(len(array), 1),
                                                                temporal_dim=0))
    (cut,) = iter_shar_cuts({"cuts": [str(tmp_path / "t/cuts.jsonl.gz")], "x": [str(tmp_path / "t/x.tar")]})
    mine, theirs = cut_array(cut, "x"), cut.load_custom("x")
    np.testing.assert_array_equal(mine, np.moveaxis(theirs, 0, -1))
    assert theirs.shape == array.shape and (mine.dtype, mine.flags.c_contiguous, mine.flags.writeable) == \
        (theirs.dtype, True, True)
    ramp = np.arange(10, dtype=np.float32).reshape(5, 2)
    temporal = _cut("b", 0.1, rng, arrays=False).attach_tensor("t", ramp, frame_shift=0.02, temporal_dim=0)
    np.testing.assert_array_equal(cut_array(temporal, "t"), ramp.T)  # Lhotse's loader, time moved last
    window = temporal.truncate(offset=0.04, duration=0.04)
    np.testing.assert_array_equal(cut_array(window, "t"), ramp[2:4].T)


def test_a_subset_of_fields_is_read_like_lhotse(shar_fields):
    fields = {f: shar_fields[f] for f in ("cuts", "mel")}
    ours, lhotse = list(iter_shar_cuts(fields)), list(CutSet.from_shar(fields=fields))
    assert [c.to_dict() for c in ours] == [c.to_dict() for c in lhotse]
    assert all(c.recording.sources[0].type == "shar" for c in ours)  # audio not read, as in Lhotse


def test_tar_members_equal_tarfiles(shar_fields):
    for path in shar_fields["recording"] + shar_fields["mel"]:
        with tarfile.open(path) as tar:
            expected = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
        assert list(iter_tar_members(path)) == expected
    assert any(name.startswith(LONG_ID) for name, _ in iter_tar_members(shar_fields["mel"][0]))


def test_damaged_and_mismatched_shards_fail_naming_the_file(shar_fields, tmp_path):
    mel = shar_fields["mel"][1]
    data = bytearray(open(mel, "rb").read())
    bad_sum, short = tmp_path / "bad_sum.tar", tmp_path / "short.tar"
    bad_sum.write_bytes(bytes(data[:10]) + b"Z" + bytes(data[11:]))
    short.write_bytes(bytes(data[:700]))
    for path, message in ((bad_sum, "bad tar header checksum at byte 0"), (short, "truncated tar member")):
        with pytest.raises(SharReadError, match=f"{path.name}: {message}"):
            list(iter_tar_members(path))
    swapped = {**shar_fields, "mel": shar_fields["mel"][::-1]}  # shard 1's arrays beside shard 0's cuts
    with pytest.raises(SharReadError, match=r"mel\.000001\.tar: holds d0\.npy where .*cuts\.000000\.jsonl\.gz has "
                                            r"cut 'a' \(shards out of step\)"):
        list(iter_shar_cuts(swapped))
    lines = gzip.decompress(open(shar_fields["cuts"][0], "rb").read()).splitlines(keepends=True)
    for name, kept, message in (("more.jsonl.gz", lines + lines[:1], r"mel\.000000\.tar: ends before .*more"),
                                ("fewer.jsonl.gz", lines[:2], r"mel\.000000\.tar: holds more items than .*fewer")):
        (tmp_path / name).write_bytes(gzip.compress(b"".join(kept)))
        with pytest.raises(SharReadError, match=message):
            list(iter_shar_cuts({"cuts": [str(tmp_path / name)], "mel": shar_fields["mel"][:1]}))
