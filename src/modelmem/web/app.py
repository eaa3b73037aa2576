"""The HTTP API and the page: the command line's answers over HTTP, for one local user.

Every estimate endpoint takes a JSON body whose fields are the command's options (same
names, with ``_`` for ``-``) and answers with exactly the JSON that the command prints
with ``--json``: both call the same application layer (:mod:`modelmem.app.entry`), and the
body models are generated from the same request fields as the command's options.

=======================  ====================================================
endpoint                 the same as
=======================  ====================================================
POST /api/params         ``modelmem params SOURCE --json``
POST /api/inference      ``modelmem inference SOURCE --json``
POST /api/train          ``modelmem train SOURCE --json``
POST /api/fit            ``modelmem fit SOURCE --device D --json``
POST /api/plan           ``modelmem plan SOURCE --device D --json``
POST /api/inference/sweep  ``inference`` at several contexts or batches
POST /api/train/sweep    ``train`` at several sequence lengths or batches
GET  /api/devices        ``modelmem devices --json``
GET  /api/models         ``modelmem models --json``
GET  /api/formats        ``modelmem formats --json``
=======================  ====================================================

``source`` is a catalogue model, a size such as ``7B``, a Hub repo id (only when the app
was started with ``allow_hub``) or a config.json pasted as a JSON object. The app never
reads a file named in a request, never fetches a URL and never runs model code.

Errors are one line, ``{"error": "..."}``:

- 404: ``source`` names no known model, or ``device`` no catalogue device;
- 422: the body does not match the schema (a missing field, a wrong type, a number out
  of range); the message names the field;
- 400: any other value the library refuses (an unknown format, a plain size where an
  architecture is needed, a malformed pasted config);
- 413: the body is larger than the cap (1 MB by default).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelmem import __version__
from modelmem.app.fields import OptionSpec, option_specs
from modelmem.app.requests import (
    DeviceRequest,
    FitRequest,
    InferenceRequest,
    PlanRequestOptions,
    TrainRequest,
    workload_specs,
)
from modelmem.errors import InvalidValueError, ModelMemError, SourceError, UnknownNameError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app", "resolve_web_source"]

DEFAULT_MAX_BODY_BYTES = 1_000_000
MAX_SWEEP_POINTS = 24

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ------------------------------------------------------------------------------ sources


class NotFoundError(ModelMemError):
    """The request names a model or device that is not known (answered with 404)."""


def _config_name(config: dict[str, Any]) -> str:
    for key in ("_name_or_path", "name_or_path"):
        value = config.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().rstrip("/").rsplit("/", 1)[-1][:100]
    model_type = config.get("model_type")
    return f"pasted {model_type}" if isinstance(model_type, str) else "pasted config"


def _refuse_paths(field: str, text: str) -> None:
    """Names only: text that names a file, folder or URL is refused."""
    looks_like_path = (
        text.startswith(("/", "~", ".", "\\"))
        or "/" in text
        or "\\" in text
        or "://" in text
        or text.lower().endswith((".json", ".gguf", ".model", ".tiktoken"))
    )
    if looks_like_path:
        raise InvalidValueError(field, text, "the web app reads no files: give a name")


def resolve_web_source(source: str | dict[str, Any], *, allow_hub: bool) -> Any:
    """A :class:`~modelmem.model.sources.ResolvedModel` from a request's ``source``.

    A JSON object is read as a config.json; text is a catalogue model, a size or (with
    ``allow_hub``) a Hub repo id. Text that names a file or folder is refused: the web
    app reads no file a request names.
    """
    from modelmem.model.params import count_params
    from modelmem.model.sources import ResolvedModel, resolve
    from modelmem.model.sources.hf_config import spec_from_config

    if isinstance(source, dict):
        spec = spec_from_config(source, name=_config_name(source), where="pasted config.json")
        return ResolvedModel(
            label=spec.name,
            kind="config",
            spec=spec,
            params=count_params(spec),
            origin="pasted config.json",
            context_length=spec.context_length if spec.attention is not None else None,
            config=source,
        )
    text = source.strip()
    looks_like_path = (
        text.startswith(("/", "~", ".", "\\"))
        or "\\" in text
        or text.lower().endswith((".json", ".gguf", ".safetensors"))
        or "://" in text.removeprefix("hf://")
    )
    if looks_like_path:
        raise InvalidValueError(
            "source", source, "the web app reads no files: paste the config.json instead"
        )
    try:
        # never a file or folder of the server's: what exists there is not the client's
        # business (and a name the OS refuses is no error of the server's)
        return resolve(text, allow_hub=allow_hub, local_files=False)
    except SourceError as e:
        raise NotFoundError(str(e)) from None
    except InvalidValueError as e:
        if e.field == "source" and "not a config.json" in e.reason:
            raise NotFoundError(
                f"source={text!r}: not a catalogue model (see /api/models) or a size such as 7B"
                + ("" if allow_hub else "; Hub ids need `modelmem serve --allow-hub`")
            ) from None
        raise


def _catalogue_device(device: str) -> str:
    if device.strip().lower() in ("local", "all"):
        raise InvalidValueError(
            "device", device, "the web app takes one catalogue device (see /api/devices)"
        )
    return device


# ------------------------------------------------------------------------------ schemas

Count = Annotated[int, Field(ge=1, le=1 << 20)]
Length = Annotated[int, Field(ge=1, le=1 << 24)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Fraction01 = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
SOURCE_MAX_CHARS = 200  # longer than any model name or Hub id
SourceField = Annotated[
    Annotated[str, Field(min_length=1, max_length=SOURCE_MAX_CHARS)] | dict[str, Any],
    Field(
        description="A catalogue model (see /api/models), a size such as 7B, a Hub repo id "
        "(only with `modelmem serve --allow-hub`), or a config.json as a JSON object.",
        examples=["llama-3.1-8b", "7B"],
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: SourceField


def _field(spec: OptionSpec) -> tuple[Any, Any]:
    """A pydantic field for one request option: the same name, default, choices and bounds
    as the command line's (both are generated from the request class)."""
    bounds: dict[str, Any] = {}
    if spec.minimum is not None:
        bounds["ge"] = spec.minimum
    if spec.maximum is not None:
        bounds["le"] = spec.maximum
    annotation: Any
    if spec.kind is object:  # a DeepSpeed config: the parsed object, never a path here
        annotation = dict[str, Any]
    elif spec.choices is not None:
        annotation = Literal[spec.choices]
    elif spec.kind is bool:
        annotation = bool
    elif spec.kind is int:
        annotation = Annotated[int, Field(**bounds)]
    elif spec.kind is float:
        annotation = Annotated[float, Field(allow_inf_nan=False, **bounds)]
    else:
        annotation = Annotated[str, Field(min_length=1, max_length=1000)]
    if spec.required:
        return annotation, Field(description=spec.help)
    if spec.default is None:
        annotation = annotation | None
    return annotation, Field(default=spec.default, description=spec.help)


def body_model(name: str, doc: str, *groups: tuple[OptionSpec, ...]) -> type[_Body]:
    """A request body with a ``source`` and the options of ``groups`` (first wins)."""
    fields: dict[str, Any] = {}
    for specs in groups:
        for spec in specs:
            if spec.name not in fields:
                fields[spec.name] = _field(spec)
    model: type[_Body] = create_model(name, __base__=_Body, __doc__=doc, **fields)
    return model


_DEVICE = option_specs(DeviceRequest)


class ParamsBody(_Body):
    """The options of ``modelmem params``."""

    dtype: Name | None = None
    optimizer: Literal["adamw", "adam", "sgd-momentum", "sgd"] = "adamw"
    train_factor: Annotated[float, Field(ge=2, le=4, allow_inf_nan=False)] | None = None


InferenceBody = body_model(
    "InferenceBody", "The options of ``modelmem inference``.", InferenceRequest.specs()
)
TrainBody = body_model("TrainBody", "The options of ``modelmem train``.", TrainRequest.specs())
FitBody = body_model(
    "FitBody",
    "The options of ``modelmem fit SOURCE``: the device, and every inference and train option.",
    _DEVICE,
    option_specs(FitRequest),
    workload_specs(),
)
PlanBody = body_model(
    "PlanBody",
    "The options of ``modelmem plan SOURCE`` for one device: options given are fixed, the "
    "rest searched.",
    _DEVICE,
    option_specs(PlanRequestOptions),
    workload_specs(),
)
# the fields that are not workload options
_NOT_WORKLOAD = frozenset(
    {
        "source",
        *(s.name for s in _DEVICE),
        "mode",
        *(s.name for s in option_specs(PlanRequestOptions)),
    }
)


SweepValues = Annotated[list[Length], Field(min_length=1, max_length=MAX_SWEEP_POINTS)]


class TokensBody(BaseModel):
    """The options of ``modelmem tokens TEXT`` (a text, not a file)."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=200_000)]
    tokenizer: Name | None = Field(
        default=None, description="A tiktoken encoding such as cl100k_base (no paths)."
    )
    source: SourceField | None = None
    completion: Annotated[int, Field(ge=0, le=1 << 24)] = 0
    kv_dtype: Name | None = None
    pieces: bool = False
    special: bool = True


class InferenceSweepBody(InferenceBody):  # type: ignore[valid-type,misc]
    """``inference`` at each value of one axis (the other options fixed; no budget)."""

    axis: Literal["context", "batch"] = "context"
    values: SweepValues


class TrainSweepBody(TrainBody):  # type: ignore[valid-type,misc]
    """``train`` at each value of one axis (the other options fixed; no budget)."""

    axis: Literal["seq", "batch"] = "seq"
    values: SweepValues


# ----------------------------------------------------------------------------- responses


class RawJSONResponse(Response):
    """JSON serialized as the command line does (``json.dumps``), so numbers are equal."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode("utf-8")


def _error(status: int, message: str) -> JSONResponse:
    line = " ".join(message.split()) or "error"
    return JSONResponse({"error": line}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": 'A value the library refuses: `{"error": "..."}`'},
    404: {"description": 'Unknown model or device: `{"error": "..."}`'},
    413: {"description": 'Body larger than the cap: `{"error": "..."}`'},
    422: {"description": 'Body does not match the schema: `{"error": "..."}`'},
}


# ---------------------------------------------------------------------------- body cap


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413: by Content-Length, and while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(scope, receive, send, declared)
                    return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a body it could not read: replaced by 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if started:
                raise
        if too_large and not started:
            await self._refuse(scope, receive, send, received)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        what = "malformed Content-Length" if size < 0 else f"body over {self.max_bytes:,} bytes"
        response = _error(413, f"request too large: {what}")
        await response(scope, receive, send)


# --------------------------------------------------------------------------------- app

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _static(name: str) -> bytes:
    return (resources.files("modelmem.web") / "static" / name).read_bytes()


class ConcurrencyLimit:
    """At most ``limit`` POST requests of the API computed at once: each costs CPU and
    memory (a plan over every device, a large pasted config), so more would only slow
    every answer and raise the server's peak memory. The rest wait up to ``wait_s`` for a
    turn, then get 429 (too many requests: retry) with Retry-After — a 4xx, since the
    server is healthy and says when to come back; GET requests (catalogues, the page)
    never wait."""

    def __init__(self, app: ASGIApp, limit: int, wait_s: float = 30.0) -> None:
        import asyncio

        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio

        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11
            response = _error(429, f"busy: {self.limit} requests are being computed; retry")
            response.headers["Retry-After"] = "2"
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


DEFAULT_MAX_CONCURRENCY = 4


def create_app(
    *,
    allow_hub: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    trusted_hosts: list[str] | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> FastAPI:
    """The app: the API under ``/api``, the page at ``/``.

    ``allow_hub``: accept Hub repo ids as sources (reads config.json from the Hub).
    ``trusted_hosts``: the Host header values accepted (a loopback server passes its own
    names, which stops DNS rebinding); None accepts any. ``max_concurrency``: API requests
    computed at once (see :class:`ConcurrencyLimit`).
    """
    app = FastAPI(
        title="modelmem",
        version=__version__,
        description="How much memory a large language model needs, and whether it fits. "
        "Each endpoint answers with the JSON of the matching `modelmem ... --json` command.",
        docs_url=None,  # Swagger UI loads its assets from a CDN: blank offline
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    _add_error_handlers(app)
    _add_estimate_routes(app, allow_hub)
    _add_catalogue_routes(app)
    _add_page_routes(app)
    if trusted_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(ConcurrencyLimit, limit=max_concurrency)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal one line of JSON: 404 unknown model or device, 422 schema, 400 other."""

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ModelMemError)
    async def _bad_value(request: Request, exc: ModelMemError) -> JSONResponse:
        if isinstance(exc, UnknownNameError) and exc.field == "device":
            return _error(404, str(exc))
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))


def _add_estimate_routes(app: FastAPI, allow_hub: bool) -> None:
    """The POST endpoints: each the JSON of its command, through the application layer."""
    from modelmem.app import entry
    from modelmem.app.models import require_architecture

    def model_of(body: Any, architecture: bool = True) -> Any:
        model = resolve_web_source(body.source, allow_hub=allow_hub)
        if architecture:
            label = body.source if isinstance(body.source, str) else "the pasted config"
            model = require_architecture(model, label)
        return model

    def workload(body: BaseModel, *skip: str) -> tuple[dict[str, Any], frozenset[str]]:
        """The workload options of a body and the names the client set."""
        drop = {*_NOT_WORKLOAD, *skip}
        options = {k: v for k, v in body.model_dump().items() if k not in drop}
        return options, frozenset(body.model_fields_set) - drop

    common: dict[str, Any] = {"response_class": RawJSONResponse, "responses": ERROR_RESPONSES}

    @app.post("/api/params", **common)
    def params(body: ParamsBody) -> Any:
        """`modelmem params SOURCE --json`: parameter count, breakdown, rule of thumb."""
        b: Any = body
        return entry.params_data(
            model_of(b, architecture=False),
            dtype=b.dtype,
            optimizer=b.optimizer,
            train_factor=b.train_factor,
        )

    @app.post("/api/tokens", **common)
    def tokens(body: TokensBody) -> Any:
        """`modelmem tokens TEXT --json`: token ids and count; with a source, the limit."""
        from modelmem.app.tokens import choose_tokenizer, text_tokens_data

        model = None
        if body.source is not None:
            model = resolve_web_source(body.source, allow_hub=allow_hub)
            model = require_architecture(model, "source")
        if body.tokenizer is not None:
            _refuse_paths("tokenizer", body.tokenizer)
        tok, note = choose_tokenizer(body.tokenizer, model, local_files=False)
        return text_tokens_data(
            body.text,
            tokenizer=tok,
            model=model,
            completion=body.completion,
            kv_dtype=body.kv_dtype,
            pieces=body.pieces,
            special=body.special,
            notes=(note,) if note else (),
        )

    @app.post("/api/inference", **common)
    def inference(body: InferenceBody) -> Any:  # type: ignore[valid-type]
        """`modelmem inference SOURCE --json`: the memory to serve the model."""
        return entry.inference_data(model_of(body), *workload(body))

    @app.post("/api/train", **common)
    def train(body: TrainBody) -> Any:  # type: ignore[valid-type]
        """`modelmem train SOURCE --json`: the peak of a training step."""
        return entry.train_data(model_of(body), *workload(body))

    @app.post("/api/fit", **common)
    def fit(body: FitBody) -> Any:  # type: ignore[valid-type]
        """`modelmem fit SOURCE --device D --json`: the verdict on COUNT × DEVICE."""
        b: Any = body
        return entry.fit_data(
            model_of(b),
            *workload(b),
            device=_catalogue_device(b.device),
            count=b.count,
            reserve=b.reserve,
            mode=b.mode,
        )

    @app.post("/api/plan", **common)
    def plan(body: PlanBody) -> Any:  # type: ignore[valid-type]
        """`modelmem plan SOURCE --device D --json`: configurations that fit."""
        b: Any = body
        return entry.plan_data(
            model_of(b),
            *workload(b),
            device=_catalogue_device(b.device),
            count=b.count,
            reserve=b.reserve,
            goal=b.goal,
            objective=b.objective,
            top=b.top,
            no_offload=b.no_offload,
        )

    @app.post("/api/inference/sweep", **common)
    def inference_sweep(body: InferenceSweepBody) -> Any:
        """`inference` at each of ``values`` of ``axis``: the points of a chart."""
        model = model_of(body)
        options, given = workload(body, "axis", "values", "memory")
        points = []
        for value in body.values:
            data = entry.inference_data(model, {**options, body.axis: value}, given | {body.axis})
            points.append(_point(value, data))
        return {"source": model.label, "axis": body.axis, "points": points}

    @app.post("/api/train/sweep", **common)
    def train_sweep(body: TrainSweepBody) -> Any:
        """`train` at each of ``values`` of ``axis``: the points of a chart."""
        model = model_of(body)
        options, given = workload(body, "axis", "values", "memory")
        points = []
        for value in body.values:
            data = entry.train_data(model, {**options, body.axis: value}, given | {body.axis})
            points.append(_point(value, data))
        return {"source": model.label, "axis": body.axis, "points": points}


def _add_catalogue_routes(app: FastAPI) -> None:
    """GET the catalogues (`modelmem devices|models|formats --json`)."""
    from modelmem.app import catalogues

    common: dict[str, Any] = {"response_class": RawJSONResponse, "responses": ERROR_RESPONSES}

    # The catalogues never change while the server runs: each answer is serialized once and
    # served from the event loop, so a page load is not queued behind heavy estimates.
    cached = lru_cache(maxsize=256)(
        lambda name, *args: json.dumps(getattr(catalogues, name)(*args)).encode("utf-8")
    )

    def catalogue(name: str, *args: str | None) -> Response:
        return Response(cached(name, *args), media_type="application/json")

    @app.get("/api/devices", **common)
    async def devices(
        kind: Annotated[str | None, Query(max_length=100)] = None,
        vendor: Annotated[str | None, Query(max_length=100)] = None,
        min_memory: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Any:
        """`modelmem devices --json`: the accelerator catalogue."""
        return catalogue("devices_data", kind, vendor, min_memory)

    @app.get("/api/models", **common)
    async def models(family: Annotated[str | None, Query(max_length=100)] = None) -> Any:
        """`modelmem models --json`: the model catalogue."""
        return catalogue("models_data", family)

    @app.get("/api/formats", **common)
    async def formats(family: Annotated[str | None, Query(max_length=100)] = None) -> Any:
        """`modelmem formats --json`: number formats with exact bits per value."""
        return catalogue("formats_data", family)


def _add_page_routes(app: FastAPI) -> None:
    """The page and its two static files (no build step, nothing from another origin)."""

    def page(name: str) -> Response:
        return Response(_static(name), media_type=STATIC_FILES[name], headers=SECURITY_HEADERS)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return page("index.html")

    @app.get("/static/app.js", include_in_schema=False)
    def app_js() -> Response:
        return page("app.js")

    @app.get("/static/style.css", include_in_schema=False)
    def style_css() -> Response:
        return page("style.css")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)


def _point(value: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": value,
        "total_bytes": data["total_bytes"],
        "components": [{"name": c["name"], "bytes": c["bytes"]} for c in data["components"]],
    }
