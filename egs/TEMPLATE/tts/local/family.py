"""What the template needs to know about a family it runs from a config alone: ``MODEL_TYPE<TAB>table|none``.

``table`` when the family's experiment config (its registered trainer's ``config_class``) takes a speaker table
(``model.n_speakers`` and ``data.speakers``), else ``none``. Exit 1 with one line when the config is unreadable,
names no model_type, or no registered trainer.
"""

from __future__ import annotations

import dataclasses
import sys
import typing

from utils.config import ConfigError, load_config
from utils.registry import RegistryError, get


def _field_names(cls: type, section: str) -> set:
    hints = typing.get_type_hints(cls)
    sub = hints.get(section)
    return {f.name for f in dataclasses.fields(sub)} if dataclasses.is_dataclass(sub) else set()


def main() -> int:
    try:
        model_type = load_config(sys.argv[1]).get("model_type")
        if not model_type:
            raise ConfigError("no model_type")
        config_class = get("trainer", model_type).config_class
    except (ConfigError, RegistryError, OSError, ValueError) as err:
        print(f"{sys.argv[1]}: not a training config of a registered family ({err})", file=sys.stderr)
        return 1
    table = "n_speakers" in _field_names(config_class, "model") and "speakers" in _field_names(config_class, "data")
    print(f"{model_type}\t{'table' if table else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
