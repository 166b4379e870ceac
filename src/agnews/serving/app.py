"""The HTTP application of agnews.serving.serve: routes, request context (ids, timing, access
log, metrics) and the handlers' answers. `create_app` builds it around a loaded Predictor."""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request),
# imported inside create_app so that the module imports without the [serve] extra

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
from dataclasses import asdict
from typing import Any

from agnews.serving.batcher import MicroBatcher, ShuttingDown
from agnews.serving.predict import Prediction, Predictor
from agnews.serving.requests import (
    BadRequest,
    Limits,
    describe_errors,
    parse_texts,
    read_body,
    request_model,
)

log = logging.getLogger("agnews.serving.serve")
access_log = logging.getLogger("agnews.access")


def _answer(p: Prediction) -> dict[str, Any]:
    return {"label": p.label, "probabilities": p.probabilities, "note": p.note}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# New request ids: 16 random hex digits drawn once per process, then a 16-digit counter, so
# they are unique without a system call per request (uuid4 reads os.urandom each time).
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def _request_id(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The client's X-Request-ID when it is 1-128 visible ASCII characters, else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and all(0x21 <= c <= 0x7E for c in value):
                return value
            break
    return f"{_ID_PREFIX}{next(_id_counter):016x}".encode()


class RequestContext:
    """Pure ASGI middleware around the whole application: the X-Request-ID header of every
    response, the request metrics, the access log, and a JSON 500 (never a traceback) for an
    exception nothing else caught."""

    def __init__(self, app: Any, metrics: Any, log_requests: bool):
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _request_id(scope["headers"])
        state = {"status": 500, "started": False}

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-request-id", rid)],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            if not state["started"]:
                body = _dumps(
                    {"error": f"internal error ({type(exc).__name__}); see the server log"}
                )
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe_request(scope["path"], state["status"], seconds)
            if self.log_requests:
                client = scope.get("client") or ("-", 0)
                access_log.info(
                    '%s:%s %s "%s %s HTTP/%s" %d %.1fms',
                    client[0],
                    client[1],
                    rid.decode(),
                    scope["method"],
                    # percent-decoded: escape what could break the line (%0A, ...)
                    scope["path"].encode("unicode_escape").decode("ascii"),
                    scope.get("http_version", "1.1"),
                    state["status"],
                    seconds * 1000,
                )


def create_app(
    predictor: Predictor, ident: dict[str, Any], limits: Limits, *, log_requests: bool = False
) -> Any:
    """The FastAPI application serving `predictor` (one model, loaded by the caller). Its
    lifespan starts the batcher and warms the model up; /readyz says when that is done."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException

    from agnews.serving.metrics import CONTENT_TYPE, ServiceMetrics

    metrics = ServiceMetrics()
    batcher: MicroBatcher[Prediction] = MicroBatcher(
        predictor.predict,
        limits.max_batch_texts,
        limits.batch_wait_ms / 1000,
        on_batch=metrics.observe_batch,
    )
    status = {"ready": False, "why": "starting: the model's first pass has not run yet"}
    in_flight = [0]
    body_model = request_model(limits)

    async def warm_up() -> None:
        try:
            await batcher.call(lambda: predictor.predict(["warm up"]))
        except Exception as exc:
            log.exception("the warm-up pass failed")
            status["why"] = f"the model's warm-up pass failed ({type(exc).__name__})"
            return
        status["ready"] = True

    @asynccontextmanager
    async def lifespan(app: Any):
        batcher.start()
        warming = asyncio.get_running_loop().create_task(warm_up())
        try:
            yield
        finally:
            status["ready"], status["why"] = False, "shutting down"
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
            await batcher.stop()

    app = FastAPI(
        title="agnews",
        summary="AG News topic classification (World, Sports, Business, Sci/Tech)",
        version=str(ident.get("md5", "")),
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(RequestContext, metrics=metrics, log_requests=log_requests)
    metrics.in_flight.set_function(lambda: in_flight[0])
    metrics.queued_requests.set_function(lambda: batcher.queued_requests)
    metrics.queued_texts.set_function(lambda: batcher.queued_texts)

    class ErrorBody(BaseModel):
        error: str = Field(description="what is wrong, in one line")

    class PredictionOut(BaseModel):
        label: str | None = Field(description="the predicted class; null if no words were left")
        probabilities: dict[str, float] = Field(description="class -> probability (4 decimals)")
        note: str = Field(description='e.g. "truncated to 256 tokens", or why there is no label')

    class PredictResponse(BaseModel):
        predictions: list[PredictionOut] = Field(description="one per text, in order")
        model: str = Field(description="md5 of the checkpoint (the hash dvc.lock records)")

    def error(code: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response(_dumps({"error": message}), code, headers, "application/json")

    def not_ready() -> Response:
        return error(503, f"not ready: {status['why']}", {"Retry-After": "1"})

    def is_ready() -> bool:
        return status["ready"] and batcher.running

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        bad = describe_errors(list(exc.errors()), limits) if exc.errors() else None
        return error(422, bad.message if bad else "invalid request")

    def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
        return {code: {"model": ErrorBody} for code in codes}

    @app.get("/livez", summary="liveness: the process answers")
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/readyz",
        summary="readiness: the model is loaded and warmed up, the batcher runs",
        responses=refusals(503),
    )
    async def readyz() -> Any:
        return {"status": "ready"} if is_ready() else not_ready()

    @app.get("/health", summary="the model served and the limits", responses=refusals(503))
    async def health() -> Any:
        if not is_ready():
            return not_ready()
        return {"status": "ok", "model": ident, "limits": asdict(limits)}

    for path, endpoint in (("/livez", livez), ("/readyz", readyz), ("/health", health)):
        app.head(path, include_in_schema=False)(endpoint)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    example = {"texts": ["Stocks rally as oil prices fall", "Federer wins the final"]}
    schema = body_model.model_json_schema()

    @app.post(
        "/predict",
        summary="classify texts",
        response_model=PredictResponse,
        responses=refusals(400, 413, 422, 503, 504),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema, "example": example}},
            }
        },
    )
    async def predict(request: Request) -> Response:
        """The texts' labels and class probabilities, in order. The body is read here (counted
        as it arrives) and validated by the schema above; errors are `{"error": "..."}`."""
        if not is_ready():
            return not_ready()
        if in_flight[0] >= limits.max_concurrency:
            return error(
                503,
                f"busy: {in_flight[0]} requests in flight, the limit (--max-concurrency); "
                "retry later",
                {"Retry-After": "1"},
            )
        in_flight[0] += 1
        try:
            async with asyncio.timeout(limits.request_timeout):
                batcher.arriving += 1
                try:
                    body = await read_body(request, limits)
                    texts = parse_texts(body, limits, body_model)
                    future = batcher.submit(texts)
                finally:
                    batcher.arriving -= 1
                    batcher.wake()
                predictions = await future
        except BadRequest as exc:
            return error(exc.status, exc.message)
        except TimeoutError:
            return error(504, f"no answer within {limits.request_timeout:g} s (--request-timeout)")
        except ShuttingDown as exc:
            return error(503, f"not ready: {exc}", {"Retry-After": "1"})
        finally:
            in_flight[0] -= 1
        return Response(
            _dumps({"predictions": [_answer(p) for p in predictions], "model": ident["md5"]}),
            media_type="application/json",
        )

    app.state.batcher = batcher
    app.state.metrics = metrics
    return app
