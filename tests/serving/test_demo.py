"""The web demo without a browser: a real ``echelon-serve`` with ``--api_key`` on loopback, driven through Gradio's
own client. The login page says the password is the API key; the controls come from the settings vocabulary with
readable labels; a user's error (empty text, white space, emoji, an unreadable upload) is shown worded for the
demo's user and logged as one line, without a traceback; the "leave out" control makes emoji text speakable."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
import soundfile as sf

from models.base.infer_settings import by_role, vocabulary
from tests.serving.live import LiveServer, write_demo_config

KEY = "s3cret"
DROP = by_role("leave_out_unspeakable")
REQUEST = {name for name, setting in vocabulary().items() if setting.request}  # those with controls on the page


def setting_of(component) -> str:
    """The request setting a component of the page controls ('' for the others): ids are TASK-SETTING."""
    elem_id = str(component.get("props", {}).get("elem_id") or "")
    return elem_id.partition("-")[2] if elem_id.partition("-")[2] in REQUEST else ""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    live = LiveServer(["--config", str(write_demo_config(root)), "--api_key", KEY, "--log_level", "info"],
                      root / "server.log").wait_ready()
    yield live, root
    assert live.stop() == 0, live.output()


def page_config(live):
    with httpx.Client(base_url=live.url, timeout=30) as client:
        refused = client.get("/ui/config")
        assert client.post("/ui/login", data={"username": "anyone", "password": KEY}).status_code == 200
        return refused, client.get("/ui/config").json()


def test_login_says_the_password_is_the_api_key_and_controls_have_labels(demo):
    live, _ = demo
    refused, config = page_config(live)
    assert refused.status_code == 401
    message = refused.json()["detail"]["auth_message"]
    assert "API key" in message and "password" in message
    controls = {c["props"]["elem_id"]: c["props"] for c in config["components"] if setting_of(c)}
    tts_rate = f"tts-{by_role('duration_scale').name}"
    assert tts_rate in controls and "vc-noise_scale" in controls and f"tts-{DROP.name}" in controls
    for elem_id, props in controls.items():
        setting = vocabulary()[elem_id.partition("-")[2]]
        assert props["label"] == setting.label != setting.name  # readable, from the vocabulary
    denoise = next(p for e, p in controls.items() if vocabulary()[e.partition("-")[2]].needs)
    assert denoise["interactive"] is False and "no denoiser" in denoise["info"]  # the tiny VC model has none


def tts_args(config, text, drop=False):
    """The TTS button's inputs: model, text, speaker, prompt, seed, then its setting controls at their values."""
    values = [c["props"] for c in config["components"] if setting_of(c) and c["props"]["elem_id"].startswith("tts-")]
    settings = [drop if p["elem_id"] == f"tts-{DROP.name}" else p["value"] for p in values]
    return ["tiny", text, "ann", None, 1234, *settings]


def test_user_errors_are_one_line_worded_for_the_demo(demo, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    live, root = demo
    _, config = page_config(live)
    client = Client(live.url + "/ui/", auth=("anyone", KEY), verbose=False)
    expected = {"": "the text is empty", "  \n ": "the text holds only white space",
                "I like 🍕.": f'remove them or tick "{DROP.label}" to leave them out'}
    for text, words in expected.items():
        with pytest.raises(AppError, match=re.escape(words)):
            client.predict(*tts_args(config, text), api_name="/tts")
    (tmp_path / "notes.wav").write_text("not audio at all")
    tone = tmp_path / "tone.wav"
    sf.write(tone, 0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000), 16000, subtype="PCM_16")
    with pytest.raises(AppError, match=r"source \('notes.wav'\): not a readable audio file \(Format not recognised\)"):
        client.predict("vc", handle_file(str(tmp_path / "notes.wav")), handle_file(str(tone)), 1234, 0.333, 0.0,
                       api_name="/vc")
    _, info = client.predict(*tts_args(config, "I like 🍕 a lot.", drop=True), api_name="/tts")
    assert "s at 16000 Hz" in info  # with the control ticked the emoji is left out and the rest is spoken
    log = live.log_path.read_text()
    assert "Traceback" not in log and "--drop_unspeakable" not in log
    assert log.count("demo request refused (400)") == len(expected) + 1  # one line per error
