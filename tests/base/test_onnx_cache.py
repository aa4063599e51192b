"""``ensure_graphs``: exports once, and a new graph version replaces the same weights' older versions only."""

from __future__ import annotations

from pathlib import Path

from models.base.onnx_backend import ensure_graphs


def test_new_version_replaces_old_versions_of_the_same_weights(tmp_path) -> None:
    cache = tmp_path / "onnx"
    for name in ("abc-vits-v1", "abc-vits-v2", "abc-vits-x-v1", "abd-vits-v1", "abc-speechsr48k-v1"):
        (cache / name).mkdir(parents=True)
        (cache / name / "g.onnx").write_bytes(b"old")
    exports = []

    def write_all(tmp: Path) -> None:
        exports.append(tmp)
        (tmp / "g.onnx").write_bytes(b"new")

    paths = ensure_graphs(cache / "abc-vits-v3", ["g"], write_all)
    assert paths["g"].read_bytes() == b"new" and len(exports) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["abc-speechsr48k-v1", "abc-vits-v3", "abc-vits-x-v1",
                                                       "abd-vits-v1"]
    ensure_graphs(cache / "abc-vits-v3", ["g"], write_all)  # present: neither exported again nor touched
    assert len(exports) == 1 and paths["g"].read_bytes() == b"new"
