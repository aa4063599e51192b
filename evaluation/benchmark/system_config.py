"""One entry of a benchmark file's ``systems`` list (or one system found by discovery).

Its own module because both the benchmark file (``config.py``) and discovery (``discover.py``, which config
runs when the file lists no systems) build it: discovery sits below the file's reader, not beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List


@dataclass
class SystemConfig:
    name: str = ""
    spec: Any = None  # pipeline spec object, spec file or checkpoint directory (models/base/pipeline.py)
    overrides: List[str] = field(default_factory=list)  # "infer.noise_scale=0.5", ...
    seed: int = 1234

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"system name {self.name!r}: give a plain name (it names a folder)")
        if not isinstance(self.spec, (str, dict)):
            raise ValueError(f"system {self.name!r}: 'spec' must be a spec object or a path, got {self.spec!r}")
