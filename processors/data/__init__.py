"""Data: the JSONL manifest format, dataset preparers (registered as ``preparer``) and feature extraction."""

from processors.data.manifest import ManifestEntry, ManifestError, read_manifest, split_entries, write_manifest

__all__ = ["ManifestEntry", "ManifestError", "read_manifest", "split_entries", "write_manifest"]
