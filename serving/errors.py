"""Errors as JSON, OpenAI's shape: ``{"error": {"message": ..., "type": ..., "param": ...}}``, never a traceback.

Statuses: 400 malformed request (bad JSON, not audio, empty input), 401 missing/wrong API key, 404 unknown
model/voice/route, 413 text or upload over a limit, 422 invalid values, 429 queue full (with Retry-After),
503 shutting down, 504 request timeout, 500 a bug (logged with its traceback on the server only).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("echelon.serve")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
         405: "invalid_request_error", 413: "request_too_large", 415: "invalid_request_error",
         422: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 503: "service_unavailable",
         504: "timeout_error"}


class ApiError(Exception):
    """An error the client gets as JSON with ``status``; ``param`` names the request field at fault."""

    def __init__(self, status: int, message: str, param: Optional[str] = None,
                 headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers or {}


def error_response(status: int, message: str, param: Optional[str] = None,
                   headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    body = {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: Any) -> Optional[str]:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or None


def validation_error(errors: list) -> ApiError:
    """Pydantic errors -> one 422 naming the first bad field (unknown fields are named as such)."""
    first = errors[0]
    param = _field(first.get("loc", ()))
    if first.get("type") == "extra_forbidden":
        return ApiError(422, f"unknown field '{param}'", param)
    return ApiError(422, f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", ""), param)


def install(app: FastAPI) -> None:
    """Route every error of the app (ours, FastAPI's, Starlette's, a bug's) to the JSON shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.message, err.param, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        api = validation_error(list(err.errors()))
        return error_response(api.status, api.message, api.param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        message = "no such route" if err.status_code == 404 else str(err.detail)
        return error_response(err.status_code, f"{message}: {request.method} {request.url.path}", None,
                              getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error (see the server log)")
