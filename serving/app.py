"""The FastAPI app: ``/health``, ``/v1/models``, ``/v1/audio/speech``, ``/v1/audio/conversion``,
``/v1/audio/upsample``, ``/v1/audio/process`` (models with a runner only), the Gradio demo at ``/ui`` (``/`` redirects there) and the API key check."""

from __future__ import annotations

import hmac
import logging
from typing import Any, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from models.base.call_threads import call_threads
from serving import errors
from serving.config import ServeConfig
from serving.errors import ApiError, error_response
from serving.models import ModelRegistry, warm_up
from serving.requests import ConversionRequest, ProcessRequest, SpeechRequest, UpsampleRequest, build, read_body
from serving.speech import Service
from serving.workers import InferenceQueue, available_cores, torch_threads

log = logging.getLogger("echelon.serve")
OPEN_PATHS = ("/", "/health", "/manifest.json", "/favicon.ico")  # no API key needed (liveness probes, the page)


def body_limit(config: ServeConfig) -> int:
    """Largest body a request may send: the text, a base64 prompt (4/3 of the bytes) and some fields."""
    lim = config.limits
    return 4 * lim.max_text_chars + (lim.max_upload_bytes * 4) // 3 + 2 * lim.max_upload_bytes + 65536


def key_matches(header: Optional[str], api_key: str) -> bool:
    """``Authorization: Bearer KEY`` against the configured key, in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_key.encode())


def lane_sizes(config: ServeConfig, registry: ModelRegistry) -> Dict[str, int]:
    """Steps of each model run at once: its ``workers``, else ``limits.workers``, else the CPU cores; 1 for a
    pipeline whose calls must not run in several threads at once (``concurrent_calls`` False)."""
    cores = available_cores()
    sizes = {}
    for name, model in registry.models.items():
        entry = config.models.get(name)
        wanted = (entry.workers if entry is not None else 0) or config.limits.workers or cores
        if wanted > 1 and not getattr(model.pipeline, "concurrent_calls", False):
            log.info("model %r runs one request at a time (its calls share state across threads)", name)
            wanted = 1
        sizes[name] = wanted
    return sizes


def share_threads(registry: ModelRegistry, lanes: Dict[str, int], warm: bool) -> None:
    """A step of a model whose lane runs n at once gets all of torch's threads for its onnxruntime sessions when it
    runs alone and 1/n of them (at least 1) when others run beside it (``InferenceQueue``); with ``warm`` the
    shared-out sessions are opened and warmed up here too, so the first concurrent request pays no session start."""
    if not warm:
        return
    threads = torch_threads()
    for name, size in lanes.items():
        if max(1, threads // size) != threads:
            try:
                with call_threads(max(1, threads // size)):
                    warm_up(registry.models[name])
            except Exception as err:  # noqa: BLE001 - only an optimisation, as at loading
                log.warning("model %r: warm-up failed (%s)", name, " ".join(str(err).split()))


def add_gate(app: FastAPI, queue: InferenceQueue, api_key: str) -> None:
    """503 while draining; the API key on every path but the open ones and the demo's (Gradio's login)."""

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if queue.draining:
            return error_response(503, "the server is shutting down and takes no new requests")
        if api_key and path not in OPEN_PATHS and not path.startswith("/ui"):  # /ui: Gradio's login
            if not key_matches(request.headers.get("authorization"), api_key):
                return error_response(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                                      headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)


def add_api_routes(app: FastAPI, service: Service, limit: int) -> None:
    """``/health``, ``/v1/models`` and the four audio endpoints (bodies up to ``limit`` bytes)."""
    registry, queue = service.registry, service.queue

    @app.get("/health")
    async def health() -> Dict[str, Any]:
        return {"status": "ok", "models": registry.names(), "in_flight": queue.in_flight,
                "capacity": queue.capacity}

    @app.get("/v1/models")
    async def models() -> Dict[str, Any]:
        return {"object": "list", "data": service.models()}

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        fields, files = await read_body(request, limit)
        unknown_files = sorted(set(files) - {"prompt"})
        if unknown_files:
            raise ApiError(422, f"unknown file field(s) {unknown_files}; the speech endpoint takes 'prompt'",
                           unknown_files[0])
        return await service.speech(build(SpeechRequest, fields), files.get("prompt"), request)

    @app.post("/v1/audio/conversion")
    async def conversion(request: Request) -> Response:
        fields, files = await read_body(request, limit)
        return await service.conversion(build(ConversionRequest, fields), files, request)

    @app.post("/v1/audio/upsample")
    async def upsample(request: Request) -> Response:
        fields, files = await read_body(request, limit)
        return await service.upsample(build(UpsampleRequest, fields), files, request)

    @app.post("/v1/audio/process")
    async def process(request: Request) -> Response:
        fields, files = await read_body(request, limit)
        return await service.process(build(ProcessRequest, fields), files, request)

    @app.on_event("shutdown")
    async def _close() -> None:
        queue.close()


def add_page_routes(app: FastAPI, service: Service, config: ServeConfig) -> None:
    """The demo at ``/ui`` (``/`` redirects there), or without it a list of the endpoints at ``/``."""
    if not config.ui:
        @app.get("/", include_in_schema=False)
        async def root_json() -> JSONResponse:
            return JSONResponse({"endpoints": ["/health", "/v1/models", "/v1/audio/speech", "/v1/audio/conversion",
                                               "/v1/audio/upsample", "/v1/audio/process"]})
        return
    from serving.ui import mount_ui

    mount_ui(app, service, config.api_key)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/manifest.json", include_in_schema=False)
    async def manifest() -> Dict[str, Any]:  # the demo page links it at the site root
        return {"name": "Echelon speech demo", "short_name": "Echelon", "start_url": "/ui/", "display": "browser"}

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)


def create_app(config: ServeConfig, registry: Optional[ModelRegistry] = None, device: str = "cpu") -> FastAPI:
    """The server of ``config``'s models (loaded here unless a ``registry`` is given)."""
    registry = registry or ModelRegistry(config.models, device, warm=config.warm_up)
    lim = config.limits
    lanes = lane_sizes(config, registry)
    share_threads(registry, lanes, config.warm_up)
    queue = InferenceQueue(lim.workers or available_cores(), lim.queue_size, lim.request_timeout_seconds,
                           lim.retry_after_seconds, lanes)
    log.info("steps run at once per model: %s", ", ".join(f"{name} {n}" for name, n in lanes.items()))
    service = Service(registry, queue, lim)
    app = FastAPI(title="Echelon speech server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    errors.install(app)
    add_gate(app, queue, config.api_key)
    add_api_routes(app, service, body_limit(config))
    add_page_routes(app, service, config)
    return app
