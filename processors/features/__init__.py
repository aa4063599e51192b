"""Registered feature extractors (registry kind ``feature``) and the feature store.

* :mod:`processors.features.base` — the interface (:class:`FeatureExtractor`, :class:`CodeExtractor` for integer
  codes), settings parsing, :func:`build_extractor`;
* :mod:`processors.features.store` — :func:`feature_path` (the one place that knows the layout),
  :func:`save_feature` / :func:`load_feature`;
* extractors: ``mel``, ``linear``, ``f0`` (:mod:`processors.features.audio`), ``ssl``
  (:mod:`processors.features.ssl`); more register themselves anywhere under ``processors/`` or ``models/``.

The extraction driver (parallel, resumable, sharded) is :mod:`processors.data.extract`.
"""

from processors.features.base import CodeExtractor, FeatureError, FeatureExtractor, build_extractor, parse_settings
from processors.features.store import feature_path, is_valid_feature_file, load_feature, save_feature

__all__ = ["CodeExtractor", "FeatureError", "FeatureExtractor", "build_extractor", "parse_settings",
           "feature_path", "is_valid_feature_file", "load_feature", "save_feature"]
