"""Loading transformers models for evaluation: hub id or local directory, with a quick, clear error offline.

Order: a local directory is loaded directly; a hub id is first looked up in the local Hugging Face cache
(``local_files_only=True``); only if it is not cached, offline mode is off (``HF_HUB_OFFLINE``) and the hub
host answers a 3-second connection probe is it downloaded.  Without the probe an offline machine would sit
in HTTP retries for minutes before failing.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

_TRUE = {"1", "true", "yes", "on"}


class ModelUnavailableError(RuntimeError):
    """A model (hub id or directory) cannot be loaded; the message says what to do."""


def hub_offline() -> bool:
    """True when Hugging Face offline mode is on (environment or ``huggingface_hub`` constant)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    if os.environ.get("TRANSFORMERS_OFFLINE", "").strip().lower() in _TRUE:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` seconds (DNS included)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    answer: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores socket timeouts
    worker.start()
    worker.join(timeout + 1.0)
    return bool(answer and answer[0])


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_pretrained(loader: Callable[..., Any], name_or_path: str, what: str, **kwargs: Any) -> Any:
    """``loader(name_or_path, **kwargs)`` (a ``from_pretrained``), turning hub/offline failures into one line."""
    local = Path(name_or_path).expanduser()
    if local.exists() and not local.is_dir():
        raise ModelUnavailableError(f"{what}: {name_or_path} is a file; pass the model directory")
    if local.is_dir():
        try:
            return loader(str(local), **kwargs)
        except (OSError, ValueError) as err:
            raise ModelUnavailableError(f"{what}: cannot load the model in {local}: {_first_line(err)}") from err
    try:
        return loader(name_or_path, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass  # not in the local cache: download below if possible
    advice = (f"Download it where a network is available (huggingface-cli download {name_or_path}) and pass "
              f"the local directory.")
    if hub_offline() or not hub_reachable():
        raise ModelUnavailableError(
            f"{what}: {name_or_path!r} is not a local directory, not in the Hugging Face cache, and could not be "
            f"fetched from the Hugging Face hub (offline). {advice}"
        )
    try:
        return loader(name_or_path, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(
            f"{what}: {name_or_path!r} could not be fetched from the Hugging Face hub. {advice} "
            f"Cause: {_first_line(err)}"
        ) from err
