"""Reading Lhotse Shar shards from local disk fast: the cuts :meth:`lhotse.CutSet.from_shar` gives, without ``tarfile``.

Lhotse's Shar reader walks each field's tar with Python's :mod:`tarfile`, whose header parsing (checksums,
octal fields, ``TarInfo`` objects, a ``Path`` per member) costs about 60 µs per item and field — a third of
what streaming an item of short audio + mel + F0 costs in all, and more than reading the same item from
per-item files that sit in the page cache (measured: ``benchmarks/data_loading.py``, TRAINING.md §5).  A Shar
tar is plain: per item a data member then its JSON manifest member, regular files only.  :func:`iter_tar_members`
reads that layout with one buffered sequential read per shard and a few slices per 512-byte header (checksum
still verified; PAX and GNU long-name headers, which ``tarfile`` writes for long or non-ASCII ids, are
understood); everything else — the cuts manifest, each member's manifest, attaching the bytes — is Lhotse's
own code (:func:`lhotse.shar.utils.fill_shar_placeholder`), so the cuts are Lhotse's (same ids, manifests,
arrays: ``tests/processors/test_shar_reader.py`` compares them with ``CutSet.from_shar``).

Paths that are not local ``.tar`` files (``.tar.gz``, URLs, ``pipe:``) are read by Lhotse's reader.

A family's ``item_from_cut`` decodes the attached bytes with :func:`cut_audio` and :func:`cut_array`: what
``cut.load_audio()`` / ``cut.load_custom(name)`` give, straight from the in-memory bytes (the ``.npy`` header of
each distinct shape parsed once: numpy's ``literal_eval`` of it was half of decoding a small array).
:func:`cut_array` gives every array time last, Echelon's layout, whether the shard stores it as a time-first
``TemporalArray`` (written since issue 44) or as a plain ``Array`` (older shards): both kinds of shard train alike.
"""

from __future__ import annotations

import ast
import functools
import io
import os
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = ["SharReadError", "iter_tar_members", "iter_shar_cuts", "cut_audio", "cut_array"]

BLOCK = 512
READ_BUFFER = 1 << 20  # bytes per read(): sequential reads of the shard, as the format intends


class SharReadError(ValueError):
    """A shard that is not a readable Lhotse Shar tar (truncated, corrupt, or holding other member types)."""


def _header_number(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # base-256 (GNU) for sizes of 8 GiB and more
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[:1] == b"\xff" else value
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _pax_records(data: bytes) -> Dict[str, str]:
    """``"<len> key=value\\n"`` records of a PAX extended header."""
    records, pos = {}, 0
    while pos < len(data) and data[pos:pos + 1] not in (b"", b"\0"):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def iter_tar_members(path: str | os.PathLike) -> Iterator[Tuple[str, bytes]]:
    """(name, bytes) of each regular-file member of an uncompressed tar, in order (one sequential read)."""
    with open(path, "rb", buffering=READ_BUFFER) as handle:
        read = handle.read
        long_name: Optional[str] = None
        pax: Dict[str, str] = {}
        offset = 0
        while True:
            header = read(BLOCK)
            if len(header) < BLOCK or header == bytes(BLOCK):
                if len(header) not in (0, BLOCK):
                    raise SharReadError(f"{path}: truncated tar header at byte {offset}")
                return
            stored = _header_number(header[148:156])
            if stored != sum(header[:148]) + 256 + sum(header[156:]):  # the checksum field counts as 8 spaces
                raise SharReadError(f"{path}: bad tar header checksum at byte {offset}")
            kind = header[156:157]
            size = int(pax["size"]) if "size" in pax else _header_number(header[124:136])
            data = read(size)
            if len(data) < size:
                raise SharReadError(f"{path}: truncated tar member at byte {offset}")
            read(-size % BLOCK)
            offset += BLOCK + size + (-size % BLOCK)
            if kind == b"x":  # PAX header: applies to the next member
                pax = _pax_records(data)
            elif kind == b"L":  # GNU long name of the next member
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == b"g":  # PAX global header: nothing Shar uses
                continue
            elif kind in (b"0", b"\0", b"7"):
                if "path" in pax:
                    name = pax["path"]
                elif long_name is not None:
                    name = long_name
                else:
                    name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                    prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
                    if prefix:
                        name = prefix.decode("utf-8", "surrogateescape") + "/" + name
                yield name, data
                long_name, pax = None, {}
            else:
                raise SharReadError(f"{path}: tar member of type {kind!r} at byte {offset}; a Shar tar holds "
                                    f"regular files only")


def _field_manifests(path: Path) -> Iterator[Tuple[Optional[object], str]]:
    """What Lhotse's ``TarIterator`` yields for a Shar field tar: (manifest with its bytes attached, or None for
    a cut without this field; the data member's name)."""
    from lhotse.serialization import decode_json_line, deserialize_item
    from lhotse.shar.utils import fill_shar_placeholder

    members = iter_tar_members(path)
    for data_name, data in members:
        try:
            meta_name, meta = next(members)
        except StopIteration:
            raise SharReadError(f"{path}: odd number of tar members (each item has data + a JSON manifest)") from None
        if data_name.endswith(".nodata") or meta_name.endswith(".nometa"):
            yield None, data_name
            continue
        manifest = deserialize_item(decode_json_line(meta.decode("utf-8")))
        fill_shar_placeholder(manifest=manifest, data=data, tarpath=data_name)
        yield manifest, data_name


def _local_tar(path) -> bool:
    text = str(path)
    return text.endswith(".tar") and "://" not in text and not text.startswith("pipe:") and Path(text).is_file()


def iter_shar_cuts(fields: Dict[str, Sequence[str | os.PathLike]]) -> Iterator[object]:
    """The cuts of ``CutSet.from_shar(fields=fields)`` (``fields["cuts"]``: the shards' ``cuts.k.jsonl.gz``; each
    other key: that field's tar per shard), in order, with each field's data attached."""
    from lhotse import CutSet
    from lhotse.lazy import LazyManifestIterator

    names = [f for f in fields if f != "cuts"]
    if not all(_local_tar(p) for f in names for p in fields[f]):
        yield from CutSet.from_shar(fields={f: [str(p) for p in paths] for f, paths in fields.items()})
        return
    for shard, cuts_path in enumerate(fields["cuts"]):
        streams = {f: _field_manifests(Path(fields[f][shard])) for f in names}
        for cut in LazyManifestIterator(cuts_path):
            for field, stream in streams.items():
                manifest, data_name = next(stream, (None, None))
                if data_name is None:
                    raise SharReadError(f"{fields[field][shard]}: ends before {cuts_path} does (at cut {cut.id!r})")
                if manifest is None:
                    continue  # this cut has no value for the field
                if data_name.rpartition(".")[0] != cut.id:
                    raise SharReadError(f"{fields[field][shard]}: holds {data_name} where {cuts_path} has cut "
                                        f"{cut.id!r} (shards out of step)")
                setattr(cut, field, manifest)
            cut.shard_origin = cuts_path
            cut.shar_epoch = 0
            yield cut
        for field, stream in streams.items():
            if next(stream, None) is not None:
                raise SharReadError(f"{fields[field][shard]}: holds more items than {cuts_path}")


def cut_audio(cut) -> np.ndarray:
    """``(N,)`` float32 audio of a cut read from shards: decoded straight from the shard's bytes when the cut is a
    whole in-memory recording (what :func:`write_shar` writes), through Lhotse's general loader otherwise."""
    import soundfile

    rec = cut.recording
    if (len(rec.sources) == 1 and rec.sources[0].type == "memory" and cut.start == 0 and not rec.transforms
            and abs(cut.duration - rec.duration) < 1e-6):
        wav, _ = soundfile.read(io.BytesIO(rec.sources[0].source), dtype="float32", always_2d=True)
        return wav[:, 0]
    return cut.load_audio()[0].astype(np.float32)



NPY_MAGIC = b"\x93NUMPY"


@functools.lru_cache(maxsize=4096)
def _npy_header(header: bytes) -> Tuple[np.dtype, bool, Tuple[int, ...]]:
    """dtype, Fortran order and shape of an ``.npy`` header dict; parsed once per distinct header (arrays of one
    shape share it): numpy's own parse (``ast.literal_eval``) is most of what decoding a small array costs."""
    fields = ast.literal_eval(header.decode("latin1"))
    return np.lib.format.descr_to_dtype(fields["descr"]), bool(fields["fortran_order"]), tuple(fields["shape"])


def _npy_array(raw: bytes, time_axis: Optional[int] = None) -> Optional[np.ndarray]:
    """A writable copy of the array of ``.npy`` bytes (with its axis ``time_axis`` moved last, C-ordered, when
    given: one copy); None when the bytes are not a plain array (np.load's case)."""
    if raw[:6] != NPY_MAGIC or raw[6] not in (1, 2, 3):
        return None
    width = 2 if raw[6] == 1 else 4
    start = 8 + width + int.from_bytes(raw[8 : 8 + width], "little")
    dtype, fortran, shape = _npy_header(raw[8 + width : start])
    if dtype.hasobject:
        return None
    flat = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=start)
    view = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    if time_axis is not None:
        return np.array(np.moveaxis(view, time_axis, -1), order="C")
    return view.copy(order="F" if fortran else "C")


def _whole(cut, value) -> bool:
    """Whether ``cut`` spans all of the in-memory ``TemporalArray`` ``value`` (what Lhotse's loader would slice)."""
    from lhotse.array import seconds_to_frames

    return (value.array.storage_type == "memory_npy" and abs(cut.start - value.start) < 1e-5
            and seconds_to_frames(cut.duration, value.frame_shift) >= value.num_frames)


def cut_array(cut, name: str) -> Optional[np.ndarray]:
    """``cut.load_custom(name)`` in Echelon's layout, time last (None when the cut has no such field).

    A ``TemporalArray`` (shards since issue 44: stored time-first with its frame shift) is the cut's span, as
    Lhotse slices it, with its time axis moved last; a plain ``Array`` (older shards; features without a time
    axis) is the stored array.  Decoded straight from the shard's ``.npy`` bytes when the cut spans the whole
    in-memory array (what Shar gives); through Lhotse's loader otherwise (a truncated or windowed cut)."""
    from lhotse.array import Array, TemporalArray

    if not cut.has_custom(name):
        return None
    value = cut.custom[name]
    if isinstance(value, Array) and value.storage_type == "memory_npy":
        array = _npy_array(value.storage_key)
        if array is not None:
            return array
    if isinstance(value, TemporalArray):
        array = _npy_array(value.array.storage_key, value.temporal_dim) if _whole(cut, value) else None
        if array is not None:
            return array
        return np.ascontiguousarray(np.moveaxis(cut.load_custom(name), value.temporal_dim, -1))
    return cut.load_custom(name)
