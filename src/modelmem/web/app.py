"""The HTTP API and the page: the command line's answers over HTTP, for one local user.

Every estimate endpoint takes a JSON body whose fields are the command's options (same
names, with ``_`` for ``-``) and answers with exactly the JSON that the command prints
with ``--json``: both call the same builder (:func:`modelmem.cli.inference_data`, ...).

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
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelmem import __version__
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
        text.startswith(("/", "~", ".", "\\")) or "/" in text or "\\" in text or "://" in text
    )
    try:
        exists = Path(text).expanduser().exists()
    except (OSError, ValueError):
        exists = False
    if looks_like_path or exists:
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
    try:
        exists = Path(text).expanduser().exists()
    except (OSError, ValueError):
        exists = False
    if looks_like_path or exists:
        raise InvalidValueError(
            "source", source, "the web app reads no files: paste the config.json instead"
        )
    try:
        return resolve(text, allow_hub=allow_hub)
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
Attention = Literal["sdpa", "eager"]
Recipe = Literal["fp32", "amp-bf16", "amp-fp16", "pure-bf16", "pure-fp16", "mixed-bf16"]
Optimizer = Literal[
    "adamw", "adam", "adamw-8bit", "sgd", "sgd-momentum", "adagrad", "rmsprop", "lion", "adafactor"
]
OptimizerImpl = Literal["foreach", "fused", "for-loop"]
Fsdp = Literal["no-shard", "shard-grad-op", "full-shard"]
Method = Literal["full", "lora", "qlora"]
SourceField = Annotated[
    str | dict[str, Any],
    Field(
        description="A catalogue model (see /api/models), a size such as 7B, a Hub repo id "
        "(only with `modelmem serve --allow-hub`), or a config.json as a JSON object.",
        examples=["llama-3.1-8b", "7B"],
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: SourceField


class ParamsBody(_Body):
    """The options of ``modelmem params``."""

    dtype: Name = "bf16"
    optimizer: Literal["adamw", "adam", "sgd-momentum", "sgd"] = "adamw"
    train_factor: Annotated[float, Field(ge=2, le=4, allow_inf_nan=False)] | None = None


class _Overheads(_Body):
    memory: Name | None = Field(default=None, description="Device memory budget, e.g. 24GiB.")
    cuda_context: Name = "400MiB"
    allocator_reserve: Fraction01 = 0.05


class InferenceBody(_Overheads):
    """The options of ``modelmem inference``."""

    dtype: Name | None = None
    kv_dtype: Name | None = None
    batch: Count = 1
    context: Length | None = None
    prompt: Length | None = None
    engine: Literal["transformers", "vllm", "llama.cpp"] | None = None
    attention: Attention = "sdpa"
    tp: Annotated[int, Field(ge=1, le=1024)] = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.9
    max_num_batched_tokens: Length = 8192
    ubatch: Length = 512
    no_flash_attention: bool = False
    gpu_layers: Annotated[int, Field(ge=0, le=100_000)] | None = None


class TrainBody(_Overheads):
    """The options of ``modelmem train``."""

    recipe: Recipe | None = None
    optimizer: Optimizer = "adamw"
    optimizer_impl: OptimizerImpl = "foreach"
    batch: Count = 1
    seq: Length = 2048
    checkpointing: bool = False
    selective_checkpointing: bool = False
    attention: Attention = "sdpa"
    grad_accumulation: Count = 1
    method: Method | None = None
    lora_rank: Annotated[int, Field(ge=1, le=65_536)] | None = None
    lora_targets: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    dora: bool = False
    qlora_scheme: Name = "bnb-nf4-dq"
    zero: Annotated[int, Field(ge=0, le=3)] = 0
    fsdp: Fsdp | None = None
    devices: Annotated[int, Field(ge=1, le=1 << 16)] = 1
    offload_optimizer: Literal["none", "cpu", "nvme"] = "none"
    offload_param: Literal["none", "cpu", "nvme"] = "none"
    fsdp_offload: bool = False
    nodes: Annotated[int, Field(ge=1, le=1 << 16)] = 1
    zero_init: bool = True
    tp: Annotated[int, Field(ge=1, le=1024)] = 1
    pp: Annotated[int, Field(ge=1, le=1024)] = 1
    sp: bool = False
    paged_optimizer: bool = False
    optimizer_in_backward: bool = False
    loss: Literal["full", "chunked", "fused"] | None = None
    loss_chunks: Annotated[int, Field(ge=1, le=1 << 16)] | None = None
    deepspeed: dict[str, Any] | None = Field(
        default=None, description="A DeepSpeed config (ds_config.json) as a JSON object."
    )


class _Workload(_Body):
    """The workload options `fit` and `plan` share."""

    device: Name = Field(description="A catalogue device or alias (see /api/devices).")
    count: Annotated[int, Field(ge=1, le=1 << 16)] = 1
    reserve: Fraction01 = 0.05
    dtype: Name | None = None
    kv_dtype: Name | None = None
    batch: Count = 1
    context: Length | None = None
    seq: Length | None = None
    attention: Attention = "sdpa"
    recipe: Recipe | None = None
    optimizer: Optimizer | None = None
    optimizer_impl: OptimizerImpl = "foreach"
    lora_rank: Annotated[int, Field(ge=1, le=65_536)] | None = None
    lora_targets: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    qlora_scheme: Name = "bnb-nf4-dq"
    zero: Annotated[int, Field(ge=0, le=3)] | None = None
    fsdp: Fsdp | None = None
    cuda_context: Name = "400MiB"
    allocator_reserve: Fraction01 = 0.05


class FitBody(_Workload):
    """The options of ``modelmem fit SOURCE``."""

    mode: Literal["inference", "train"] = "inference"
    method: Method | None = None
    checkpointing: bool = False


class PlanBody(_Workload):
    """The options of ``modelmem plan SOURCE`` for one device."""

    goal: Literal["inference", "train", "lora", "qlora"] = "inference"
    objective: Literal["context", "batch", "devices", "quality"] | None = None
    checkpointing: bool | None = None
    top: Annotated[int, Field(ge=1, le=100)] = 5


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
    kv_dtype: Name = "bf16"
    pieces: bool = False
    special: bool = True


class InferenceSweepBody(InferenceBody):
    """``inference`` at each value of one axis (the other options fixed; no budget)."""

    axis: Literal["context", "batch"] = "context"
    values: SweepValues


class TrainSweepBody(TrainBody):
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


def create_app(
    *,
    allow_hub: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    trusted_hosts: list[str] | None = None,
) -> FastAPI:
    """The app: the API under ``/api``, the page at ``/``.

    ``allow_hub``: accept Hub repo ids as sources (reads config.json from the Hub).
    ``trusted_hosts``: the Host header values accepted (a loopback server passes its own
    names, which stops DNS rebinding); None accepts any.
    """
    from modelmem import cli
    from modelmem import cli_hardware as hw

    app = FastAPI(
        title="modelmem",
        version=__version__,
        description="How much memory a large language model needs, and whether it fits. "
        "Each endpoint answers with the JSON of the matching `modelmem ... --json` command.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )

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

    def model_of(body: _Body, architecture: bool = True) -> Any:
        model = resolve_web_source(body.source, allow_hub=allow_hub)
        if architecture:
            label = body.source if isinstance(body.source, str) else "the pasted config"
            model = cli.require_architecture(model, label)
        return model

    def options(body: BaseModel, *skip: str) -> dict[str, Any]:
        return {k: v for k, v in body.model_dump().items() if k not in ("source", *skip)}

    common: dict[str, Any] = {"response_class": RawJSONResponse, "responses": ERROR_RESPONSES}

    @app.post("/api/params", **common)
    def params(body: ParamsBody) -> Any:
        """`modelmem params SOURCE --json`: parameter count, breakdown, rule of thumb."""
        return cli.params_data(model_of(body, architecture=False), **options(body))

    @app.post("/api/tokens", **common)
    def tokens(body: TokensBody) -> Any:
        """`modelmem tokens TEXT --json`: token ids and count; with a source, the limit."""
        from modelmem.cli_tokens import model_tokenizer, text_tokens_data
        from modelmem.tokens import load_tokenizer

        model = None
        if body.source is not None:
            model = resolve_web_source(body.source, allow_hub=allow_hub)
            model = cli.require_architecture(model, "source")
        if body.tokenizer is not None:
            _refuse_paths("tokenizer", body.tokenizer)
            tok = load_tokenizer(body.tokenizer)
        elif model is not None:
            tok = model_tokenizer(model)
        else:
            raise InvalidValueError("tokenizer", None, "give a tokenizer or a source")
        return text_tokens_data(
            body.text,
            tokenizer=tok,
            model=model,
            completion=body.completion,
            kv_dtype=body.kv_dtype,
            pieces=body.pieces,
            special=body.special,
        )

    @app.post("/api/inference", **common)
    def inference(body: InferenceBody) -> Any:
        """`modelmem inference SOURCE --json`: the memory to serve the model."""
        return cli.inference_data(model_of(body), **options(body))

    @app.post("/api/train", **common)
    def train(body: TrainBody) -> Any:
        """`modelmem train SOURCE --json`: the peak of a training step."""
        return cli.train_data(model_of(body), **options(body))

    @app.post("/api/fit", **common)
    def fit(body: FitBody) -> Any:
        """`modelmem fit SOURCE --device D --json`: the verdict on COUNT × DEVICE."""
        opts = options(body)
        opts["device"] = _catalogue_device(body.device)
        return hw.fit_data(model_of(body), **opts)

    @app.post("/api/plan", **common)
    def plan(body: PlanBody) -> Any:
        """`modelmem plan SOURCE --device D --json`: configurations that fit."""
        opts = options(body)
        opts["device"] = _catalogue_device(body.device)
        return hw.plan_data(model_of(body), **opts)

    @app.post("/api/inference/sweep", **common)
    def inference_sweep(body: InferenceSweepBody) -> Any:
        """`inference` at each of ``values`` of ``axis``: the points of a chart."""
        model = model_of(body)
        opts = options(body, "axis", "values", "memory")
        points = []
        for value in body.values:
            data = cli.inference_data(model, **{**opts, body.axis: value})
            points.append(_point(value, data))
        return {"source": model.label, "axis": body.axis, "points": points}

    @app.post("/api/train/sweep", **common)
    def train_sweep(body: TrainSweepBody) -> Any:
        """`train` at each of ``values`` of ``axis``: the points of a chart."""
        model = model_of(body)
        opts = options(body, "axis", "values", "memory")
        points = []
        for value in body.values:
            data = cli.train_data(model, **{**opts, body.axis: value})
            points.append(_point(value, data))
        return {"source": model.label, "axis": body.axis, "points": points}

    @app.get("/api/devices", **common)
    def devices(
        kind: Literal["datacenter", "consumer", "apple", "tpu"] | None = None,
        vendor: Annotated[str | None, Query(max_length=100)] = None,
        min_memory: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Any:
        """`modelmem devices --json`: the accelerator catalogue."""
        return hw.devices_data(kind, vendor, min_memory)

    @app.get("/api/models", **common)
    def models(family: Annotated[str | None, Query(max_length=100)] = None) -> Any:
        """`modelmem models --json`: the model catalogue."""
        return cli.models_data(family)

    @app.get("/api/formats", **common)
    def formats(family: Annotated[str | None, Query(max_length=100)] = None) -> Any:
        """`modelmem formats --json`: number formats with exact bits per value."""
        return cli.formats_data(family)

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

    if trusted_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app


def _point(value: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": value,
        "total_bytes": data["total_bytes"],
        "components": [{"name": c["name"], "bytes": c["bytes"]} for c in data["components"]],
    }
