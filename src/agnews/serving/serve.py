"""Serve a checkpoint over HTTP (needs the optional extra: pip install -e '.[serve]').

    python -m agnews serve  # params.yaml's paths.model, :8000
    python -m agnews serve --model model.pt --port 8080 --name gru-run

POST /predict  {"texts": ["Stocks rally as oil falls", ...]}
               -> {"predictions": [{"label": "Business", "probabilities": {...}, "note": ""}],
                   "model": "<md5 of the checkpoint>"}
GET  /health   -> the model's identity: its file's md5 (the hash dvc.lock records for it) and
                  sha256, experiment name (--name), classes, model config, best validation
                  accuracy, device, temperature; and the limits below (HEAD too)
GET  /livez    -> 200 while the process answers (liveness)
GET  /readyz   -> 200 once the model is loaded, warmed up and the batcher runs, else 503
GET  /metrics  -> Prometheus metrics (prometheus_client's text format)
GET  /docs, /openapi.json -> the OpenAPI description (Swagger UI)

The checkpoint is loaded once, before the server listens; the first forward pass (a warm-up) runs
on the batcher's thread, and /readyz (and /predict) answer 503 until it is done. Texts of
concurrent requests are gathered into one forward pass (agnews.serving.batcher: at most
--max-batch-texts texts, waiting at most --batch-wait-ms for more); each request gets its own
texts' predictions, in order.

Requests are bounded: a body over --max-body-bytes is refused with 413 before it is read whole,
as is a list of more than --max-batch texts or a text of more than --max-text-chars characters
(413, naming the item). At most --max-concurrency /predict requests are in flight: one more is
refused at once, before its body is read, with 503 and Retry-After. A request not answered within
--request-timeout seconds (its reading, queueing and forward pass) gets 504. Every error is one
line of JSON, {"error": "..."}, with a 4xx status for bad input (not JSON or nested too deep, not
an object with a list `texts`, an empty list, an item that is not a string, too large), 503/504
for the bounds above, never a 500 with a traceback. A text with no words after preprocessing
gets "label": null and the reason in "note", as in agnews.serving.predict. Every response carries
an X-Request-ID header: the request's own (1-128 visible ASCII characters) or a generated one;
--access-log prints one line per request with it.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request),
# imported inside create_app so that the module imports without the [serve] extra

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agnews.config import load_params
from agnews.errors import AgnewsError
from agnews.serving.batcher import MicroBatcher, ShuttingDown
from agnews.serving.predict import Prediction, Predictor

log = logging.getLogger(__name__)
access_log = logging.getLogger("agnews.access")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000  # a request body larger than this is refused (413)
    max_batch: int = 256  # texts per request (413)
    max_text_chars: int = 10_000  # characters per text (413)
    max_concurrency: int = 64  # /predict requests in flight; one more gets 503 + Retry-After
    request_timeout: float = 30.0  # seconds for one /predict request, else 504
    batch_wait_ms: float = 2.0  # the longest a forward pass waits for more requests
    max_batch_texts: int = 64  # texts per forward pass (1: one request per pass)


class BadRequest(Exception):
    """A request the service refuses: its status and the one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def file_digests(path: str | Path) -> dict[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def identity(predictor: Predictor, model_path: str | Path, name: str | None) -> dict[str, Any]:
    """What /health says about the model being served (not where its file is on the server)."""
    payload = predictor.payload
    return {
        "experiment": name,
        **file_digests(model_path),
        "format": payload["format"],
        "classes": list(predictor.class_names),
        "model_config": payload["model_config"],
        "ensemble": payload.get("ensemble", 1),
        "best_val_acc": payload.get("best", {}).get("best_val_acc"),
        "device": str(predictor.device),
        "temperature": predictor.temperature,
    }


# pydantic's error types, in the order a body's errors are reported (the first one found wins)
_ORDER = {
    "json_invalid": 0,
    "model_type": 1,
    "dict_type": 1,
    "missing": 2,
    "extra_forbidden": 3,
    "list_type": 4,
    "too_short": 5,
    "too_long": 6,
}


def describe_errors(errors: list[dict[str, Any]], limits: Limits) -> BadRequest:
    """The status and one-line message for pydantic's validation errors of a /predict body."""
    errors = sorted(errors, key=lambda e: (_ORDER.get(e["type"], 9), tuple(map(str, e["loc"]))))
    first = errors[0]
    kind, loc = first["type"], tuple(first["loc"])
    if loc and loc[0] == "body":  # FastAPI's own validation errors start with "body"
        loc = loc[1:]
    given = type(first.get("input")).__name__
    if kind == "json_invalid":
        return BadRequest(400, f"body is not JSON ({first.get('ctx', {}).get('error', '?')})")
    if kind in ("model_type", "dict_type", "missing"):
        return BadRequest(422, 'body must be a JSON object {"texts": ["...", ...]}')
    if kind == "extra_forbidden":
        unknown = sorted({str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"})
        return BadRequest(422, f"unknown field(s) {', '.join(map(repr, unknown))}; only 'texts'")
    if loc == ("texts",):
        if kind == "list_type":
            return BadRequest(422, f"texts must be a list of strings, not {given}")
        if kind == "too_short":
            return BadRequest(422, "texts is empty: give at least one text")
        if kind == "too_long":
            n = first.get("ctx", {}).get("actual_length", "too many")
            return BadRequest(413, f"{n} texts, more than the limit of {limits.max_batch}")
    if len(loc) == 2 and loc[0] == "texts" and isinstance(loc[1], int):
        i = loc[1]
        if kind == "string_type":
            return BadRequest(422, f"texts[{i}] is {given}, not a string")
        if kind == "string_too_long":
            n = len(first["input"])
            return BadRequest(
                413,
                f"texts[{i}] has {n} characters, more than the limit of {limits.max_text_chars}",
            )
    where = ".".join(map(str, loc)) or "body"
    return BadRequest(422, f"{where}: {first.get('msg', kind)}")


def request_model(limits: Limits) -> Any:
    """The pydantic model of a /predict body under `limits` (its JSON schema is in /docs)."""
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, StringConstraints

    text = Annotated[str, StringConstraints(strict=True, max_length=limits.max_text_chars)]

    class PredictRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid",
            strict=True,
            json_schema_extra={"examples": [{"texts": ["Stocks rally as oil prices fall"]}]},
        )
        texts: list[text] = Field(
            min_length=1,
            max_length=limits.max_batch,
            description="the texts to classify (headlines, or title and description)",
        )

    return PredictRequest


def parse_texts(body: bytes, limits: Limits, model: Any = None) -> list[str]:
    """The texts of a /predict body, or BadRequest saying what is wrong with it. The body is
    parsed and validated by pydantic (its JSON parser refuses nesting deeper than 200 levels)."""
    from pydantic import ValidationError

    model = model or request_model(limits)
    try:
        return model.model_validate_json(body).texts
    except ValidationError as exc:
        raise describe_errors(exc.errors(include_url=False), limits) from None


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


async def read_body(request: Any, limits: Limits) -> bytes:
    """The request's body, refused with 413 as soon as it is known to be over the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) < 0):
        raise BadRequest(400, "bad Content-Length")
    if declared is not None and int(declared) > limits.max_body_bytes:
        raise BadRequest(413, f"body of {declared} bytes, more than {limits.max_body_bytes}")
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no Content-Length
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise BadRequest(413, f"body over {limits.max_body_bytes} bytes")
    return bytes(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = Limits()
    parser.add_argument("--model", help="checkpoint (default: params.yaml's paths.model)")
    parser.add_argument(
        "--params", default="params.yaml", help="params file naming paths.model (no --model)"
    )
    parser.add_argument("--name", help="experiment name reported by /health (e.g. dvc exp's)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divide the logits by this (metrics/calibration.json's `temperature`); default 1",
    )
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads for the forward pass (default: torch's)"
    )
    parser.add_argument(
        "--max-batch", type=int, default=d.max_batch, help="texts/request (default %(default)s)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=d.max_body_bytes,
        help="bytes/request (default %(default)s)",
    )
    parser.add_argument(
        "--max-text-chars",
        type=int,
        default=d.max_text_chars,
        help="characters/text (default %(default)s)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=d.max_concurrency,
        help="/predict requests in flight; more get 503 + Retry-After (default %(default)s)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=d.request_timeout,
        help="seconds for one /predict request, else 504 (default %(default)s)",
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=d.batch_wait_ms,
        help="the longest a forward pass waits for more requests: those still being read, and "
        "as many as the last pass served (default %(default)s; 0: never wait)",
    )
    parser.add_argument(
        "--max-batch-texts",
        type=int,
        default=d.max_batch_texts,
        help="texts per forward pass, gathered from concurrent requests (default %(default)s; "
        "1: one request per pass, no micro-batching)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="one line per request on stderr: client, request id, request, status, time",
    )
    args = parser.parse_args(argv)
    positive = {
        "--max-batch": args.max_batch,
        "--max-body-bytes": args.max_body_bytes,
        "--max-text-chars": args.max_text_chars,
        "--max-concurrency": args.max_concurrency,
        "--max-batch-texts": args.max_batch_texts,
        "--request-timeout": args.request_timeout,
        "--threads": 1 if args.threads is None else args.threads,
    }
    for flag, value in positive.items():
        if not value > 0:
            parser.error(f"{flag} must be > 0")
    if not args.batch_wait_ms >= 0:
        parser.error("--batch-wait-ms must be >= 0")
    try:
        import uvicorn

        import agnews.serving.metrics  # noqa: F401 - prometheus_client, of the [serve] extra
    except ImportError:
        print("error: serving needs the [serve] extra: pip install -e '.[serve]'", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        model_path = args.model or load_params(args.params).paths.model
        predictor = Predictor(model_path, args.device, args.temperature)
        ident = identity(predictor, model_path, args.name)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_batch=args.max_batch,
        max_text_chars=args.max_text_chars,
        max_concurrency=args.max_concurrency,
        request_timeout=args.request_timeout,
        batch_wait_ms=args.batch_wait_ms,
        max_batch_texts=args.max_batch_texts,
    )
    handler = logging.StreamHandler(sys.stderr)  # the service's own log lines, on stderr
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("agnews").addHandler(handler)
    logging.getLogger("agnews").setLevel(logging.WARNING)
    if args.access_log:
        access_log.setLevel(logging.INFO)
    app = create_app(predictor, ident, limits, log_requests=args.access_log)
    print(
        f"serving {model_path} (md5 {ident['md5']}) on http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
