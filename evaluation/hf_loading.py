"""Loading transformers models for evaluation: hub id or local directory, with a clear error offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


class ModelUnavailableError(RuntimeError):
    """A model (hub id or directory) cannot be loaded; the message says what to do."""


def load_pretrained(loader: Callable[..., Any], name_or_path: str, what: str, **kwargs: Any) -> Any:
    """``loader(name_or_path, **kwargs)`` (a ``from_pretrained``), turning hub/offline failures into one line.

    A path that exists is loaded as a local directory; anything else is taken as a hub id, which needs the
    weights in the local Hugging Face cache or network access.
    """
    local = Path(name_or_path).expanduser()
    if local.exists() and not local.is_dir():
        raise ModelUnavailableError(f"{what}: {name_or_path} is a file; pass the model directory")
    source = str(local) if local.is_dir() else name_or_path
    try:
        return loader(source, **kwargs)
    except (OSError, ValueError) as err:
        if local.is_dir():
            raise ModelUnavailableError(f"{what}: cannot load the model in {local}: {err}") from err
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelUnavailableError(
            f"{what}: {name_or_path!r} is not a local directory and could not be fetched from the Hugging Face "
            f"hub (offline?). Download it where a network is available (huggingface-cli download {name_or_path}) "
            f"and pass the local directory. Cause: {first_line}"
        ) from err
