"""The HTTP API through a real uvicorn process on loopback: a tiny 3-speaker VITS and the bundled SpeechSR
(24 kHz) from a serve.json5, plus the converted Piper joe voice where it is installed. Good requests give
audio of the right length and rate; each bad request its status and message; streams equal one-shot output."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time

import httpx
import numpy as np
import pytest

from models.base.pipeline import load_pipeline
from processors.audio import AudioError
from serving.speech import model_error
from tests.serving.live import SPEAKERS, LiveServer, make_tiny_vc, make_tiny_voice, read_wav, wav_bytes

SPEECH = "/v1/audio/speech"
TEXT = "Hello there. This is a small test of the speech server, spoken in two sentences!"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    make_tiny_voice(root / "tiny")
    make_tiny_vc(root / "vc")
    (root / "serve.json5").write_text(json.dumps({
        "models": {"tiny": {"pipeline": "tiny", "overrides": ["infer.max_sentence_chars=40",
                                                              "infer.stream_window_frames=16"],
                            "voices": {"alloy": "bob"}},
                   "sr24": {"model_type": "speechsr", "overrides": ["infer.target_rate=24000"]},
                   "vc": {"pipeline": "vc", "overrides": ["infer.f0_method=dio"]}},
        "limits": {"max_text_chars": 400, "max_upload_bytes": 200000, "max_upload_seconds": 3.0, "queue_size": 2},
    }))
    live = LiveServer(["--config", str(root / "serve.json5"), "--api_key", "s3cret", "--no_ui"],
                      root / "server.log").wait_ready()
    yield live
    assert live.stop() == 0, live.output()


def post(server, body=None, key="s3cret", **kwargs):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(server.url + SPEECH, json=body, headers=headers, timeout=60, **kwargs)


def error(response, status):
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) == {"message", "type", "param"} and err["message"]
    return err


def test_health_and_models(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"  # open without the key
    models = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer s3cret"}).json()["data"]
    tiny = next(m for m in models if m["id"] == "tiny")
    assert tiny["task"] == "tts" and tiny["sample_rate"] == 16000 and tiny["speakers"] == SPEAKERS
    assert "noise_scale" in tiny["request_settings"] and "max_sentence_chars" not in tiny["request_settings"]
    assert tiny["voices"] == [*SPEAKERS, "alloy"] and tiny["voice_map"] == {"alloy": "bob"}
    assert tiny["speed"] == "length_scale" and "ignored" in tiny["instructions"]
    assert next(m for m in models if m["id"] == "sr24")["sample_rate"] == 24000


def test_speech_is_audio_of_its_voice_and_seed(server):
    first = post(server, {"model": "tiny", "input": TEXT, "voice": "bob", "seed": 3})
    assert first.status_code == 200 and first.headers["content-type"] == "audio/wav"
    wav, rate = read_wav(first.content)
    assert rate == 16000 and wav.size > 16000 and np.abs(wav).max() > 0.001
    again = post(server, {"model": "tiny", "input": TEXT, "voice": "bob", "seed": 3})
    assert again.content == first.content  # same request, same seed: same bytes
    mapped = post(server, {"model": "tiny", "input": TEXT, "voice": "alloy", "seed": 3,
                           "instructions": "Speak in a cheerful tone."})  # OpenAI's field: accepted, not used
    assert mapped.content == first.content  # serve.json5 maps OpenAI's "alloy" to bob
    assert post(server, {"model": "tiny", "input": TEXT, "voice": {"id": "bob"}, "seed": 3}).content == first.content
    other = read_wav(post(server, {"model": "tiny", "input": TEXT, "voice": 2, "seed": 3}).content)[0]
    assert other.shape != wav.shape or np.abs(other - wav).max() > 1e-3  # voice 2 (cid) is another speaker
    slow = read_wav(post(server, {"model": "tiny", "input": TEXT, "voice": "bob", "seed": 3, "speed": 0.5}).content)[0]
    assert slow.size > 1.3 * wav.size  # twice the frames per symbol (the 0.3 s pauses stay)
    pcm = post(server, {"model": "tiny", "input": TEXT, "voice": "bob", "seed": 3, "response_format": "pcm"})
    assert pcm.headers["x-sample-rate"] == "16000"
    np.testing.assert_allclose(np.frombuffer(pcm.content, "<i2") / 32768.0, wav, atol=1e-4)
    flac = post(server, {"model": "tiny", "input": TEXT, "voice": "bob", "seed": 3, "response_format": "flac"})
    np.testing.assert_allclose(read_wav(flac.content)[0], wav, atol=1e-4)


def test_stream_joined_equals_one_shot(server):
    body = {"model": "tiny", "input": TEXT, "voice": "ann", "seed": 5}
    one_shot = post(server, {**body, "stream": False})
    whole, _ = read_wav(one_shot.content)
    assert float(one_shot.headers["x-audio-seconds"]) == pytest.approx(whole.size / 16000, abs=1e-3)
    for extra in ({"stream": True}, {}):  # without "stream", as OpenAI's endpoint: wav and pcm are streamed
        with httpx.stream("POST", server.url + SPEECH, json={**body, **extra},
                          headers={"Authorization": "Bearer s3cret"}, timeout=60) as response:
            assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
            assert "x-audio-seconds" not in response.headers  # not known when the first chunk goes out
            chunks = [c for c in response.iter_raw() if c]
        assert len(chunks) > 2  # sent in pieces (chunked transfer), not at once
        streamed, rate = read_wav(b"".join(chunks))  # a WAV header of unknown length, then 16-bit PCM
        assert rate == 16000 and streamed.shape == whole.shape
        np.testing.assert_allclose(streamed, whole, atol=4 / 32768)  # windows: 1e-4, then 16-bit rounding
    sse = post(server, {**body, "stream_format": "sse", "response_format": "pcm"})
    events = [json.loads(line[6:]) for line in sse.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    np.testing.assert_allclose(np.frombuffer(pcm, "<i2") / 32768.0, whole, atol=4 / 32768)


@pytest.mark.parametrize("body, status, words", [
    ({"model": "tiny", "input": "", "voice": "ann"}, 400, "input is empty"),
    ({"model": "tiny", "input": "   ", "voice": "ann"}, 400, "input holds only white space"),
    ({"model": "tiny", "input": "I like 🍕.", "voice": "ann"}, 400, 'send "drop_unspeakable": true'),
    ({"model": "tiny", "input": "🍕 🍕", "voice": "ann", "drop_unspeakable": True}, 400, "nothing is left to speak"),
    ({"model": "tiny", "input": "Hi.", "voice": "echo"}, 404, "does not map to its speakers"),
    ({"model": "nope", "input": "Hi.", "voice": "ann"}, 404, "model 'nope' not found"),
    ({"model": "/etc/passwd", "input": "Hi."}, 404, "not found"),
    ({"model": "tiny", "input": "Hi.", "voice": "zed"}, 404, "voice 'zed' not found"),
    ({"model": "tiny", "input": "Hi."}, 422, "give 'voice'"),
    ({"model": "tiny", "input": "word " * 100, "voice": "ann"}, 413, "over the limit of 400"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "speed": 9}, 422, "speed"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "speed": 0.2}, 422, "speed"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "noise_scale": -1}, 422, "noise_scale=-1.0: must be at least"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "noise_scale": 6}, 422, "a request may ask for at most 5"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "length_scale": 0}, 422, "length_scale=0.0: must be above 0"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "seed": -1}, 422, "seed=-1: must be at least 0"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "stream": False, "stream_format": "sse"}, 422, "sse"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "output_rate": 48000}, 422, "no request setting 'output_rate'"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "ckpt_dir": "/tmp"}, 422, "unknown field 'ckpt_dir'"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "response_format": "aac"}, 422, "response_format 'aac'"),
    ({"model": "tiny", "input": "Hi.", "voice": "ann", "prompt_audio": "AAAA"}, 422, "takes no prompt audio"),
    ({"model": "sr24", "input": "Hi."}, 422, "is a sr model, not tts"),
])
def test_bad_requests_get_their_status_and_message(server, body, status, words):
    message = error(post(server, body), status)["message"]
    assert words in message and "--" not in message  # worded for an HTTP caller, not the CLI's flags


def test_malformed_bodies_and_keys(server):
    headers = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    assert "malformed JSON" in error(httpx.post(server.url + SPEECH, content=b"{bad", headers=headers), 400)["message"]
    assert "object" in error(httpx.post(server.url + SPEECH, content=b"[1]", headers=headers), 400)["message"]
    assert "API key" in error(post(server, {"model": "tiny", "input": "Hi."}, key="wrong"), 401)["message"]
    assert error(post(server, {"model": "tiny", "input": "Hi."}, key=None), 401)
    assert error(httpx.get(server.url + "/v1/nothing", headers=headers), 404)


def test_upsample_and_bad_uploads(server):
    auth = {"Authorization": "Bearer s3cret"}
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    up = httpx.post(server.url + "/v1/audio/upsample", data={"model": "sr24"}, headers=auth, timeout=60,
                    files={"audio": ("a.wav", wav_bytes(tone, 16000), "audio/wav")})
    assert up.status_code == 200, up.text
    wav, rate = read_wav(up.content)
    assert rate == 24000 and wav.size == 24000 and np.abs(wav).max() > 0.05
    cases = [(b"this is not audio", 400, "audio ('a.wav'): not a readable audio file (Format not recognised)"),
             (b"", 400, "empty"),
             (wav_bytes(np.zeros(0, np.float32), 16000), 400, "zero length"),
             (wav_bytes(np.zeros(16000 * 4, np.float32), 16000), 413, "over the limit of 3 s"),
             (b"\0" * 300000, 413, "over the limit of 200000 bytes")]
    for data, status, words in cases:
        response = httpx.post(server.url + "/v1/audio/upsample", data={"model": "sr24"}, headers=auth, timeout=60,
                              files={"audio": ("a.wav", data, "audio/wav")})
        message = error(response, status)["message"]
        assert words in message and "BytesIO" not in message and " at 0x" not in message, message
    speech = (0.3 * np.sin(2 * np.pi * 150 * np.arange(16000) / 16000) * (1 + np.sin(np.arange(16000) / 800))
              ).astype(np.float32)
    files = {"source": ("a.wav", wav_bytes(speech, 16000)), "prompt": ("b.wav", wav_bytes(tone, 16000))}
    vc = httpx.post(server.url + "/v1/audio/conversion", headers=auth, timeout=120, files=files,
                    data={"model": "vc", "seed": "3", "noise_scale": "0.5"})
    assert vc.status_code == 200, vc.text
    wav, rate = read_wav(vc.content)
    assert rate == 16000 and wav.size == speech.size and np.abs(wav).max() > 0.01
    missing = httpx.post(server.url + "/v1/audio/conversion", headers=auth, timeout=60, data={"model": "vc"},
                         files={"source": ("a.wav", wav_bytes(speech, 16000))})
    assert "'prompt'" in error(missing, 400)["message"]
    wrong = httpx.post(server.url + "/v1/audio/conversion", headers=auth, timeout=60, files=files,
                       data={"model": "vc", "denoise_ratio": "0.5"})
    assert "denoiser" in error(wrong, 422)["message"]


def test_refused_audio_is_reported_against_its_own_field():
    """A pipeline's AudioError names the upload it came from: /process and /upsample take 'audio', /conversion
    'source' or 'prompt' by what the pipeline says (neither when it cannot tell), /speech 'prompt'."""
    short = AudioError("shorter than one analysis window (12 < 1024 samples)")
    assert (model_error(short, audio_params=("audio",)).status, model_error(short, audio_params=("audio",)).param) \
        == (400, "audio")
    assert model_error(short).param == "prompt"
    pair = ("source", "prompt")
    assert model_error(AudioError("source must be a non-empty mono waveform"), audio_params=pair).param == "source"
    assert model_error(AudioError("prompt must be a non-empty mono waveform"), audio_params=pair).param == "prompt"
    assert model_error(short, audio_params=pair).param is None
    assert model_error(ValueError("noise_scale must be >= 0"), audio_params=("audio",)).status == 422


def test_concurrent_requests_each_get_their_own_audio_and_a_full_queue_says_429(server):
    """8 clients at once with distinct seeds/voices: every answer equals that request made alone, or is a 429
    with Retry-After (capacity 1 worker + 2 queued); none is lost or mixed up."""
    bodies = [{"model": "tiny", "input": TEXT, "voice": SPEAKERS[i % 3], "seed": 100 + i} for i in range(8)]
    expected = [post(server, b).content for b in bodies]
    answers = [None] * len(bodies)

    def call(i):
        answers[i] = post(server, bodies[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [i for i, a in enumerate(answers) if a.status_code == 200]
    busy = [i for i, a in enumerate(answers) if a.status_code == 429]
    assert len(ok) + len(busy) == len(bodies) and len(ok) >= 3
    for i in ok:
        assert answers[i].content == expected[i], f"request {i} got another request's audio"
    for i in busy:
        assert int(answers[i].headers["retry-after"]) > 0 and "busy" in error(answers[i], 429)["message"]
    time.sleep(0.5)
    assert httpx.get(server.url + "/health").json()["in_flight"] == 0  # every slot came back


def test_sigterm_finishes_in_flight_requests_then_exits_zero(tmp_path):
    make_tiny_voice(tmp_path / "tiny")
    live = LiveServer(["--ckpt_dir", str(tmp_path / "tiny"), "--no_ui"], tmp_path / "log").wait_ready()
    long_text = " ".join([TEXT] * 4)
    result = {}

    def slow_stream():
        with httpx.stream("POST", live.url + SPEECH, json={"input": long_text, "voice": "ann", "stream": True},
                          timeout=60) as response:
            result["status"] = response.status_code
            result["bytes"] = b"".join(response.iter_raw())

    thread = threading.Thread(target=slow_stream)
    thread.start()
    time.sleep(0.3)
    live.proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    refused = None
    try:
        refused = httpx.post(live.url + SPEECH, json={"input": "Hi.", "voice": "ann"}, timeout=10)
    except httpx.TransportError:
        pass  # the listener may already be closed
    thread.join(60)
    assert live.stop() == 0, live.output()
    assert result["status"] == 200
    wav, _ = read_wav(result["bytes"])
    whole = load_pipeline(str(tmp_path / "tiny")).synthesize([long_text], speakers=["ann"])[0].waveform
    assert wav.shape == whole.shape  # the in-flight stream was finished, not cut
    if refused is not None:  # the listener stays open while draining (here: 503 seen on the loaded machine)
        assert "shutting down" in error(refused, 503)["message"]
