"""What each endpoint does with a parsed request: pick the model, check voice/prompt/limits, run the task
call as steps of the worker pool, encode the result (or stream it)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Sequence

from fastapi.responses import Response, StreamingResponse
from starlette.requests import Request

from models.base.infer_settings import by_role
from models.base.tasks import Audio
from processors.audio import AudioError
from processors.text.frontend import TextError
from processors.text.speakable import UnspeakableText
from serving.audio import STREAMABLE, check_format, decode_base64_audio, decode_upload, encode, pcm16, \
    streaming_wav_header
from serving.config import Limits
from serving.errors import ApiError
from serving.models import ModelRegistry, ServedModel
from serving.requests import MAX_TEXT_FIELD, ConversionRequest, ProcessRequest, SpeechRequest, Upload, \
    UpsampleRequest
from serving.workers import InferenceQueue

log = logging.getLogger("echelon.serve")
# how an HTTP caller leaves out what the voice cannot speak (the request field the vocabulary names for it)
API_DROP_REMEDY = 'send "{name}": true'


def model_error(err: ValueError, drop_remedy: str = API_DROP_REMEDY,
                audio_params: Sequence[str] = ("prompt",)) -> ApiError:
    """A pipeline's refusal of its input -> 400 (unreadable text or audio) or 422 (invalid value). Text with
    characters the voice cannot speak says how *this* caller leaves them out (``drop_remedy``, formatted with
    the setting's ``name``), not the CLI's flag. Refused audio is reported against the request's audio field: the
    one in ``audio_params``, or of several the one the message begins with (pipelines say "source ..." or "prompt
    ...")."""
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, UnspeakableText):
        return ApiError(400, err.message(drop_remedy.format(name=by_role("leave_out_unspeakable").name)), "input")
    if isinstance(err, TextError):
        return ApiError(400, message, "input")
    if isinstance(err, AudioError):
        named = [p for p in audio_params if len(audio_params) == 1 or message.startswith(p)]
        return ApiError(400, message, named[0] if named else None)
    return ApiError(422, message)


class Service:
    """The endpoints' logic over a model registry, a worker queue and the limits."""

    def __init__(self, registry: ModelRegistry, queue: InferenceQueue, limits: Limits):
        self.registry, self.queue, self.limits = registry, queue, limits

    # ------------------------------------------------------------------ checks
    def text(self, text: str, what: str = "input") -> str:
        """The text to speak, or a 400/413 saying what is wrong with it (``what``: how the caller calls it)."""
        if not text:
            raise ApiError(400, f"{what} is empty: give the text to speak", "input")
        if not text.strip():
            raise ApiError(400, f"{what} holds only white space ({len(text)} characters): give the text to speak",
                           "input")
        if len(text) > self.limits.max_text_chars:
            raise ApiError(413, f"{what} has {len(text)} characters, over the limit of {self.limits.max_text_chars} "
                                f"(the server's {MAX_TEXT_FIELD})", "input")
        return text

    def upload(self, upload: Optional[Upload], param: str) -> Audio:
        if upload is None:
            raise ApiError(400, f"give the audio file field '{param}'", param)
        return decode_upload(upload.data, self.limits.max_upload_bytes, self.limits.max_upload_seconds, param,
                             upload.filename)

    def seed(self, seed: Optional[int]) -> Optional[int]:
        """A request's seed, checked as every seed is (the vocabulary's)."""
        try:
            by_role("seed").check(seed, prefix="")
        except ValueError as err:
            raise ApiError(422, str(err), "seed") from err
        return seed

    def audio_response(self, audio: Audio, response_format: str) -> Response:
        data, media, rate = encode(audio, response_format)
        return Response(data, media_type=media, headers={"X-Sample-Rate": str(rate),
                                                         "X-Audio-Seconds": f"{audio.seconds:.3f}"})

    async def run(self, model: str, fn: Any, request: Optional[Request], drop_remedy: str = API_DROP_REMEDY,
                  audio_params: Sequence[str] = ("prompt",)) -> Any:
        """``fn`` as one step of ``model``'s lane (a ValueError of the pipeline becomes its status; refused audio
        is reported against one of the request's fields ``audio_params``)."""
        slot = self.queue.admit(model)
        try:
            return await slot.run(fn, request)
        except ValueError as err:
            raise model_error(err, drop_remedy, audio_params) from err

    # ------------------------------------------------------------------ TTS
    def speech_prompt(self, model: ServedModel, req: SpeechRequest, prompt_file: Optional[Upload]) -> Optional[Audio]:
        """The voice prompt of a zero-shot model (None for the others), checked against what the model takes."""
        caps = model.pipeline.capabilities
        if req.prompt_text and not caps.prompt_text:
            raise ApiError(422, f"model {model.name!r} does not use prompt_text", "prompt_text")
        if req.prompt_audio is None and prompt_file is None:
            if caps.audio_prompt:
                raise ApiError(422, f"model {model.name!r} is zero-shot: give prompt_audio (base64) or a 'prompt' "
                                    f"file of the voice to speak with", "prompt_audio")
            return None
        if not caps.audio_prompt:
            raise ApiError(422, f"model {model.name!r} speaks with its own voices and takes no prompt audio",
                           "prompt_audio")
        if prompt_file is not None:
            return self.upload(prompt_file, "prompt")
        return decode_base64_audio(req.prompt_audio, self.limits.max_upload_bytes, self.limits.max_upload_seconds,
                                   "prompt_audio")

    async def speech(self, req: SpeechRequest, prompt_file: Optional[Upload], request: Request) -> Response:
        """OpenAI's speech endpoint. Like OpenAI's, it streams the formats that can be streamed (wav, pcm) unless
        ``stream: false`` asks for the whole file (exact WAV sizes, ``X-Audio-Seconds``)."""
        text = self.text(req.input)
        model = self.registry.get(req.model, "tts")
        speaker = model.speaker(req.voice_name)
        prompt = self.speech_prompt(model, req, prompt_file)
        pipeline = model.variant(req.changes(), req.speed)
        seed = self.seed(req.seed)
        check_format(req.response_format)
        if req.stream is False and req.stream_format == "sse":
            raise ApiError(422, "stream_format 'sse' is a stream: leave out 'stream': false", "stream")
        streaming = req.stream_format == "sse" or (req.response_format in STREAMABLE if req.stream is None
                                                   else req.stream)
        if not streaming:
            audio = await self.run(model.name, lambda: pipeline.synthesize(
                [text], None if prompt is None else [prompt], None if not req.prompt_text else [req.prompt_text],
                None if speaker is None else [speaker], seed)[0], request)
            return await asyncio.to_thread(self.audio_response, audio, req.response_format)
        if req.response_format not in STREAMABLE:
            raise ApiError(422, f"a stream is sent as {' or '.join(STREAMABLE)}, not {req.response_format!r}",
                           "response_format")
        chunks = pipeline.synthesize_stream(text, prompt, req.prompt_text or None, speaker, seed)
        slot = self.queue.admit(model.name)
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

    # ------------------------------------------------------------------ VC / SR / process
    async def conversion(self, req: ConversionRequest, files: Dict[str, Upload], request: Request) -> Response:
        model = self.registry.get(req.model, "vc")
        source, prompt = self.upload(files.get("source"), "source"), self.upload(files.get("prompt"), "prompt")
        pipeline, seed = model.variant(req.changes()), self.seed(req.seed)
        check_format(req.response_format)
        audio = await self.run(model.name, lambda: pipeline.convert([source], [prompt], seed)[0], request,
                               audio_params=("source", "prompt"))
        return await asyncio.to_thread(self.audio_response, audio, req.response_format)

    async def upsample(self, req: UpsampleRequest, files: Dict[str, Upload], request: Request) -> Response:
        model = self.registry.get(req.model, "sr")
        audio_in = self.upload(files.get("audio"), "audio")
        pipeline, seed = model.variant(req.changes()), self.seed(req.seed)
        check_format(req.response_format)
        audio = await self.run(model.name, lambda: pipeline.upsample([audio_in], seed)[0], request,
                               audio_params=("audio",))
        return await asyncio.to_thread(self.audio_response, audio, req.response_format)

    async def process(self, req: ProcessRequest, files: Dict[str, Upload], request: Request) -> Response:
        """A model with a runner only (copy synthesis, reconstruction): the uploaded audio in, its output out."""
        model = self.registry.get(req.model, "process")
        audio_in = self.upload(files.get("audio"), "audio")
        check_format(req.response_format)
        audio = await self.run(model.name, lambda: model.pipeline.process_audio(audio_in), request,
                               audio_params=("audio",))
        return await asyncio.to_thread(self.audio_response, audio, req.response_format)

    def models(self) -> List[Dict[str, Any]]:
        return [m.describe() for m in self.registry.models.values()]
