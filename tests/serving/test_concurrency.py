"""Each served model has its own lane of steps (serving/workers.py): several requests of one model run at the same
time and still give the audio each gives alone (the noise of each call comes from its own torch.Generator), and a
slow request of one model does not hold up another model."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import torch

from models.base.pipeline import load_pipeline
from serving.app import lane_sizes
from serving.config import ServeConfig
from serving.models import ModelRegistry
from serving.workers import InferenceQueue
from tests.serving.live import SPEAKERS, make_tiny_voice

TEXTS = ["Hello there, this is the first request.", "A second sentence, spoken at the same time!",
         "Numbers and words: one, two, three.", "The fourth one is a question, is it not?"]


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory):
    return make_tiny_voice(tmp_path_factory.mktemp("tiny") / "tiny")


def queue_of(lanes) -> InferenceQueue:
    return InferenceQueue(workers=1, queue_size=8, timeout_seconds=60, retry_after_seconds=1, lanes=lanes)


def run_together(queue: InferenceQueue, model: str, calls) -> list:
    """Every call as one step of ``model``'s lane, all admitted at once; each waits at a barrier first, so none
    starts computing before all are running at the same time (a lane that ran them one at a time would time out)."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def step(call):
        def fn():
            barrier.wait()
            return call()
        return fn

    async def scenario():
        return await asyncio.gather(*(queue.admit(model).run(step(call)) for call in calls))

    return asyncio.run(scenario())


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_requests_of_one_model_run_at_once_and_give_the_audio_each_gives_alone(tiny_voice, backend):
    pipeline = load_pipeline(str(tiny_voice), ["infer.max_sentence_chars=20"], backend=backend)
    assert pipeline.concurrent_calls  # VITS on the CPU: its noise comes from each call's own generator
    calls = [(text, SPEAKERS[i % 3], 100 + i) for i, text in enumerate(TEXTS)]

    def one_shot(text, speaker, seed):
        return lambda: pipeline.synthesize([text], speakers=[speaker], seed=seed)[0].waveform

    def streamed(text, speaker, seed):
        return lambda: np.concatenate([c.waveform for c in pipeline.synthesize_stream(text, speaker=speaker,
                                                                                        seed=seed)])

    for make in (one_shot, streamed):
        alone = [make(*c)() for c in calls]
        queue = queue_of({"tiny": len(calls)})
        for _ in range(2):
            together = run_together(queue, "tiny", [make(*c) for c in calls])
            for a, b in zip(alone, together):
                assert a.tobytes() == b.tobytes()  # byte-identical: no call drew another's noise
        queue.close()
    first = one_shot(*calls[0])()
    torch.manual_seed(0)
    assert one_shot(*calls[0])().tobytes() == first.tobytes()  # nor does torch's global generator matter


def test_a_call_ignores_torch_global_generator_while_it_runs(tiny_voice):
    """Another thread reseeding torch's process-global generator all along changes nothing."""
    pipeline = load_pipeline(str(tiny_voice), backend="torch")
    expected = pipeline.synthesize(TEXTS[:2], speakers=[SPEAKERS[1]], seed=7)
    stop = threading.Event()

    def reseed():
        i = 0
        while not stop.is_set():
            torch.manual_seed(i)
            torch.randn(64)
            i += 1

    noisy = threading.Thread(target=reseed)
    noisy.start()
    try:
        got = [pipeline.synthesize(TEXTS[:2], speakers=[SPEAKERS[1]], seed=7) for _ in range(3)]
    finally:
        stop.set()
        noisy.join()
    for run in got:
        assert [a.waveform.tobytes() for a in run] == [a.waveform.tobytes() for a in expected]


def test_a_slow_request_of_one_model_does_not_hold_up_another():
    """Model A's lane is busy with a slow step (and a second A request waits behind it, A having one lane
    thread); model B's request runs meanwhile and finishes first."""

    async def scenario():
        queue = queue_of({"a": 1, "b": 1})
        release = threading.Event()
        finished = []

        def slow():
            release.wait(30)
            finished.append("a")

        slow_a = asyncio.ensure_future(queue.admit("a").run(slow))
        queued_a = asyncio.ensure_future(queue.admit("a").run(lambda: finished.append("a2")))
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await asyncio.wait_for(queue.admit("b").run(lambda: finished.append("b")), timeout=5)
        assert time.monotonic() - start < 2 and finished == ["b"]  # A still runs, its second request waits
        release.set()
        await slow_a
        await queued_a
        assert finished == ["b", "a", "a2"] and queue.in_flight == 0
        queue.close()

    asyncio.run(scenario())


def test_lane_sizes_follow_the_config_and_what_each_pipeline_allows(tiny_voice, monkeypatch):
    from serving import app as app_module

    monkeypatch.setattr(app_module, "available_cores", lambda: 4)
    config = ServeConfig(models={})
    registry = ModelRegistry({})
    registry.models = {"tiny": type("M", (), {"pipeline": load_pipeline(str(tiny_voice))})(),
                       "shared": type("M", (), {"pipeline": object()})()}  # no concurrent_calls: one at a time
    assert lane_sizes(config, registry) == {"tiny": 4, "shared": 1}  # default: the cores
    config.limits.workers = 2
    assert lane_sizes(config, registry) == {"tiny": 2, "shared": 1}


def test_a_lone_step_gets_every_thread_for_its_sessions_and_steps_together_share(tiny_voice):
    """The lane sets the onnxruntime threads per step when it starts: all of them when no other step of the model
    runs (the first of two that meet), 1/n when one does (the second); a runtime that follows the caller opens one session pair per count and gives (nearly) the
    same audio on either (the two-window graph on 2 threads: within 1e-4)."""
    from models.base.call_threads import call_threads, threads_of_call

    queue = queue_of({"tiny": 2})
    queue.threads = 2  # as on a 2-core machine (the tests run torch on one thread)
    alone = run_together(queue, "tiny", [lambda: threads_of_call(0)])
    together = run_together(queue, "tiny", [lambda: threads_of_call(0), lambda: threads_of_call(0)])
    queue.close()
    assert alone == [2] and sorted(together) == [1, 2] and threads_of_call(7) == 7  # nothing left set in this thread
    pipeline = load_pipeline(str(tiny_voice), backend="onnxruntime")
    runtime = pipeline.synth.runtime
    assert runtime.follows_caller
    waves = []
    for threads in (1, 2):
        with call_threads(threads):
            waves.append(pipeline.synthesize([TEXTS[0]], speakers=[SPEAKERS[0]], seed=4)[0].waveform)
    assert sorted(runtime._sessions) == [1, 2]
    assert waves[0].shape == waves[1].shape and float(np.abs(waves[0] - waves[1]).max()) <= 1e-4
