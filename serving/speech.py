"""What each endpoint does with a parsed request: pick the model, check voice/prompt/limits, run the task
call as steps of the worker pool, encode the result (or stream it)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, AsyncIterator, Callable, Dict, List, Optional

from fastapi.responses import Response, StreamingResponse
from starlette.requests import Request

from models.base.tasks import Audio
from processors.audio import AudioError
from processors.text.frontend import TextError
from serving.audio import STREAMABLE, check_format, decode_base64_audio, decode_upload, encode, pcm16, \
    streaming_wav_header
from serving.config import Limits
from serving.errors import ApiError
from serving.models import ModelRegistry, ServedModel
from serving.requests import ConversionRequest, SpeechRequest, UpsampleRequest
from serving.workers import InferenceQueue

log = logging.getLogger("echelon.serve")
SINGLE_VOICE_NAMES = ("", "default")


def model_error(err: ValueError) -> ApiError:
    """A pipeline's refusal of its input -> 400 (unreadable text or audio) or 422 (invalid value)."""
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, TextError):
        return ApiError(400, message, "input")
    if isinstance(err, AudioError):
        return ApiError(400, message, "prompt")
    return ApiError(422, message)


class Service:
    """The endpoints' logic over a model registry, a worker queue and the limits."""

    def __init__(self, registry: ModelRegistry, queue: InferenceQueue, limits: Limits):
        self.registry, self.queue, self.limits = registry, queue, limits

    # ------------------------------------------------------------------ checks
    def speaker(self, model: ServedModel, voice: Any) -> Any:
        speakers = list(model.pipeline.capabilities.speakers)
        if not speakers:
            if voice is None or str(voice) in (*SINGLE_VOICE_NAMES, model.name):
                return None
            raise ApiError(404, f"voice {voice!r} not found: model {model.name!r} has one voice "
                                f"(send voice 'default' or none)", "voice")
        if voice is None or voice == "":
            raise ApiError(422, f"model {model.name!r} has {len(speakers)} voices: give 'voice' "
                                f"(one of {', '.join(speakers[:20])})", "voice")
        if str(voice) in speakers:
            return str(voice)
        if isinstance(voice, int) or str(voice).isdigit():
            if 0 <= int(voice) < len(speakers):
                return int(voice)
        raise ApiError(404, f"voice {voice!r} not found; model {model.name!r} has: {', '.join(speakers[:20])}",
                       "voice")

    def text(self, text: str) -> str:
        if not text.strip():
            raise ApiError(400, "input is empty: give the text to speak", "input")
        if len(text) > self.limits.max_text_chars:
            raise ApiError(413, f"input has {len(text)} characters, over the limit of {self.limits.max_text_chars}",
                           "input")
        return text

    def upload(self, data: Optional[bytes], param: str) -> Audio:
        if data is None:
            raise ApiError(400, f"give the audio file field '{param}'", param)
        return decode_upload(data, self.limits.max_upload_bytes, self.limits.max_upload_seconds, param)

    def audio_response(self, audio: Audio, response_format: str) -> Response:
        data, media = encode(audio, response_format)
        return Response(data, media_type=media, headers={"X-Sample-Rate": str(audio.sample_rate),
                                                         "X-Audio-Seconds": f"{audio.seconds:.3f}"})

    async def run(self, fn: Any, request: Request) -> Any:
        slot = self.queue.admit()
        try:
            return await slot.run(fn, request)
        except ValueError as err:
            raise model_error(err) from err

    # ------------------------------------------------------------------ TTS
    async def speech(self, req: SpeechRequest, prompt_file: Optional[bytes], request: Request) -> Response:
        text = self.text(req.input)
        model = self.registry.get(req.model, "tts")
        speaker = self.speaker(model, req.voice)
        caps = model.pipeline.capabilities
        if req.instructions:
            raise ApiError(422, f"model {model.name!r} takes no instructions", "instructions")
        prompt = None
        if req.prompt_audio is not None or prompt_file is not None:
            if not caps.audio_prompt:
                raise ApiError(422, f"model {model.name!r} speaks with its own voices and takes no prompt audio",
                               "prompt_audio")
            prompt = self.upload(prompt_file, "prompt") if prompt_file is not None else decode_base64_audio(
                req.prompt_audio, self.limits.max_upload_bytes, self.limits.max_upload_seconds, "prompt_audio")
        elif caps.audio_prompt:
            raise ApiError(422, f"model {model.name!r} is zero-shot: give prompt_audio (base64) or a 'prompt' "
                                f"file of the voice to speak with", "prompt_audio")
        if req.prompt_text and not caps.prompt_text:
            raise ApiError(422, f"model {model.name!r} does not use prompt_text", "prompt_text")
        changes = req.changes()
        if req.speed != 1.0:
            if "length_scale" not in model.settings():
                raise ApiError(422, f"model {model.name!r} has no speaking-rate setting", "speed")
            changes["length_scale"] = changes.get("length_scale", model.settings()["length_scale"]) / req.speed
        pipeline = model.variant(changes)
        check_format(req.response_format)
        if not req.streaming:
            audio = await self.run(lambda: pipeline.synthesize(
                [text], None if prompt is None else [prompt], None if not req.prompt_text else [req.prompt_text],
                None if speaker is None else [speaker], req.seed)[0], request)
            return await asyncio.to_thread(self.audio_response, audio, req.response_format)
        if req.response_format not in STREAMABLE:
            raise ApiError(422, f"a stream is sent as {' or '.join(STREAMABLE)}, not {req.response_format!r}",
                           "response_format")
        chunks = pipeline.synthesize_stream(text, prompt, req.prompt_text or None, speaker, req.seed)
        slot = self.queue.admit()
        try:
            first, rest = await slot.first_and_rest(chunks, request)
        except ValueError as err:
            raise model_error(err) from err
        rate = pipeline.output_rate()
        body = self._stream_bytes(first, rest, rate, req.response_format, lambda: slot.abandon(chunks))
        headers = {"X-Sample-Rate": str(rate), "Cache-Control": "no-store"}
        if req.stream_format == "sse":
            return StreamingResponse(self._sse(body), media_type="text/event-stream", headers=headers)
        media = "audio/wav" if req.response_format == "wav" else "audio/pcm"
        return StreamingResponse(body, media_type=media, headers=headers)

    @staticmethod
    async def _stream_bytes(first: Audio, rest: AsyncIterator[Audio], rate: int, fmt: str,
                            on_end: Callable[[], None]) -> AsyncIterator[bytes]:
        """The stream's bytes; ``on_end`` frees its slot however it ends, also when the client leaves during the
        first sends (then ``rest`` never started and its own clean-up never runs)."""
        try:
            if fmt == "wav":
                yield streaming_wav_header(rate)
            yield pcm16(first.waveform)
            async for chunk in rest:
                yield pcm16(chunk.waveform)
        except ValueError as err:  # a later sentence the model refuses: the stream ends there
            log.warning("stream ended early: %s", err)
        finally:
            await rest.aclose()  # type: ignore[attr-defined]
            on_end()

    @staticmethod
    async def _sse(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for data in body:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
            yield f"data: {json.dumps(event)}\n\n".encode()
        yield b'data: {"type": "speech.audio.done"}\n\n'

    # ------------------------------------------------------------------ VC / SR
    async def conversion(self, req: ConversionRequest, files: Dict[str, bytes], request: Request) -> Response:
        model = self.registry.get(req.model, "vc")
        source, prompt = self.upload(files.get("source"), "source"), self.upload(files.get("prompt"), "prompt")
        pipeline = model.variant(req.changes())
        check_format(req.response_format)
        audio = await self.run(lambda: pipeline.convert([source], [prompt], req.seed)[0], request)
        return await asyncio.to_thread(self.audio_response, audio, req.response_format)

    async def upsample(self, req: UpsampleRequest, files: Dict[str, bytes], request: Request) -> Response:
        model = self.registry.get(req.model, "sr")
        audio_in = self.upload(files.get("audio"), "audio")
        changes = {} if req.target_rate is None else {"target_rate": req.target_rate}
        pipeline = model.variant(changes)
        check_format(req.response_format)
        audio = await self.run(lambda: pipeline.upsample([audio_in])[0], request)
        return await asyncio.to_thread(self.audio_response, audio, req.response_format)

    def models(self) -> List[Dict[str, Any]]:
        return [m.describe() for m in self.registry.models.values()]
