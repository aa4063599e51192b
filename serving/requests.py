"""Request bodies: JSON (OpenAI's shape) or multipart forms, parsed here so that each failure has its status.

``POST /v1/audio/speech`` takes OpenAI's fields (``model``, ``input``, ``voice`` as a name or ``{"id": name}``,
``instructions`` (accepted, not used), ``speed``, ``response_format``, ``stream_format``) plus ``stream`` and
Echelon's settings: ``seed`` and the request settings of the shared vocabulary
(``models/base/infer_settings.json5``: ``noise_scale``, ``noise_scale_w``, ``length_scale``, ``noise_scale_ttv``,
``noise_scale_vc``, ``denoise_ratio``, ``output_rate``, ``target_rate``, ``pause_seconds``, ``drop_unspeakable``;
each checked there and taken where the model has it) and, for zero-shot models, ``prompt_audio`` (base64) and
``prompt_text``; the same fields as a multipart form take the prompt as a file field ``prompt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Literal, Optional, Tuple, Type, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.datastructures import UploadFile
from starlette.requests import Request

from models.base.infer_settings import TYPES, vocabulary
from serving.errors import ApiError, validation_error

MAX_TEXT_FIELD = "limits.max_text_chars"  # where the text limit is set (named in the 413)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class _Settings(_Strict):
    seed: Optional[int] = None

    def changes(self) -> Dict[str, Any]:
        """The vocabulary settings this request sets (its values are checked by the vocabulary, with the model)."""
        return {k: getattr(self, k) for k in REQUEST_FIELDS if getattr(self, k) is not None}


# one optional field per request setting of the vocabulary, typed as it declares
REQUEST_FIELDS = tuple(s.name for s in vocabulary().values() if s.request)
SamplingSettings = create_model("SamplingSettings", __base__=_Settings, **{
    name: (Optional[TYPES[vocabulary()[name].type]], None) for name in REQUEST_FIELDS})


class VoiceId(_Strict):
    """OpenAI's custom-voice form of ``voice``: ``{"id": "..."}``."""

    id: str


class SpeechRequest(SamplingSettings):  # type: ignore[misc, valid-type]
    model: Optional[str] = None
    input: str
    voice: Optional[Union[str, int, VoiceId]] = None
    speed: float = Field(1.0, ge=0.25, le=4.0)  # OpenAI's range
    response_format: str = "wav"
    stream: Optional[bool] = None  # None: stream what can be streamed (wav, pcm), as OpenAI's endpoint does
    stream_format: Optional[Literal["audio", "sse"]] = None
    instructions: Optional[str] = None  # OpenAI's voice instructions: accepted, not used (GET /v1/models says so)
    prompt_audio: Optional[str] = None  # base64 (or a data: URL) of an audio file
    prompt_text: Optional[str] = None

    @property
    def voice_name(self) -> Any:
        return self.voice.id if isinstance(self.voice, VoiceId) else self.voice


class ConversionRequest(SamplingSettings):  # type: ignore[misc, valid-type]
    model: Optional[str] = None
    response_format: str = "wav"


class UpsampleRequest(SamplingSettings):  # type: ignore[misc, valid-type]
    model: Optional[str] = None
    response_format: str = "wav"


class ProcessRequest(_Strict):
    """``POST /v1/audio/process``: a model with a runner only takes its input file and no settings."""

    model: Optional[str] = None
    response_format: str = "wav"


@dataclass
class Upload:
    """An uploaded file: its bytes and the name the client gave it (for messages)."""

    data: bytes
    filename: str = ""


def build(schema: Type[BaseModel], fields: Dict[str, Any]) -> Any:
    try:
        return schema.model_validate(fields)
    except ValidationError as err:
        raise validation_error(list(err.errors())) from err


async def read_body(request: Request, limit: int) -> Tuple[Dict[str, Any], Dict[str, Upload]]:
    """-> (fields, uploaded files). JSON bodies must be one object; forms give text fields and files."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=4, max_fields=64, max_part_size=limit)
        except Exception as err:  # noqa: BLE001 - python-multipart / starlette raise several kinds
            raise ApiError(400, f"malformed form body: {' '.join(str(err).split())}") from err
        fields: Dict[str, Any] = {}
        files: Dict[str, Upload] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = Upload(await value.read(limit + 1), value.filename or "")
            elif value != "":
                fields[key] = value
        return fields, files
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
    if ctype not in ("application/json", ""):
        raise ApiError(400, f"unsupported content type {ctype!r}: send application/json or multipart/form-data")
    try:
        fields = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"malformed JSON body: {err}") from err
    if not isinstance(fields, dict):
        raise ApiError(400, "the JSON body must be an object")
    return fields, {}
