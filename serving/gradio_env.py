"""What the Gradio demo needs set before Gradio is imported (used by ``bins/serve.py`` and ``serving/ui.py``; it
imports nothing of ``serving/``, so the app and the demo both sit above it)."""

from __future__ import annotations

import os


def quiet_gradio() -> None:
    """No analytics, no update checks, nothing sent off this machine by the demo (set before Gradio loads)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
