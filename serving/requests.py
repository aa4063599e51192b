"""Request bodies: JSON (OpenAI's shape) or multipart forms, parsed here so that each failure has its status.

``POST /v1/audio/speech`` takes OpenAI's fields (``model``, ``input``, ``voice``, ``speed``,
``response_format``, ``stream_format``) plus ``stream`` and Echelon's settings (``seed``, noise scales,
``output_rate``, ``pause_seconds``) and, for zero-shot models, ``prompt_audio`` (base64) and ``prompt_text``;
the same fields as a multipart form take the prompt as a file field ``prompt``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Literal, Optional, Tuple, Type, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from serving.errors import ApiError, validation_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class SamplingSettings(_Strict):
    """The settings a request may change (each applies where the model's settings have it)."""

    seed: Optional[int] = Field(None, ge=0, le=2 ** 31 - 1)
    noise_scale: Optional[float] = Field(None, ge=0.0, le=5.0)
    noise_scale_w: Optional[float] = Field(None, ge=0.0, le=5.0)
    length_scale: Optional[float] = Field(None, gt=0.0, le=10.0)
    noise_scale_ttv: Optional[float] = Field(None, ge=0.0, le=5.0)
    noise_scale_vc: Optional[float] = Field(None, ge=0.0, le=5.0)
    denoise_ratio: Optional[float] = Field(None, ge=0.0, le=1.0)
    output_rate: Optional[int] = None
    pause_seconds: Optional[float] = Field(None, ge=0.0, le=5.0)

    def changes(self) -> Dict[str, Any]:
        values = {k: getattr(self, k) for k in SamplingSettings.model_fields if k != "seed"}
        return {k: v for k, v in values.items() if v is not None}


class SpeechRequest(SamplingSettings):
    model: Optional[str] = None
    input: str
    voice: Optional[Union[str, int]] = None
    speed: float = Field(1.0, ge=0.25, le=4.0)
    response_format: str = "wav"
    stream: bool = False
    stream_format: Optional[Literal["audio", "sse"]] = None
    instructions: Optional[str] = None
    prompt_audio: Optional[str] = None  # base64 (or a data: URL) of an audio file
    prompt_text: Optional[str] = None

    @property
    def streaming(self) -> bool:
        return self.stream or self.stream_format is not None


class ConversionRequest(SamplingSettings):
    model: Optional[str] = None
    response_format: str = "wav"


class UpsampleRequest(_Strict):
    model: Optional[str] = None
    target_rate: Optional[int] = None
    response_format: str = "wav"


def build(schema: Type[BaseModel], fields: Dict[str, Any]) -> Any:
    try:
        return schema.model_validate(fields)
    except ValidationError as err:
        raise validation_error(list(err.errors())) from err


async def read_body(request: Request, limit: int) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
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
        files: Dict[str, bytes] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = await value.read(limit + 1)
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
