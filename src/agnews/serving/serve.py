"""Serve a checkpoint over HTTP (needs the optional extra: pip install -e '.[serve]').

    python -m agnews serve  # params.yaml's paths.model, :8000
    python -m agnews serve --model model.pt --port 8080 --name gru-run

POST /predict  {"texts": ["Stocks rally as oil falls", ...]}
               -> {"predictions": [{"label": "Business", "probabilities": {...}, "note": ""}],
                   "model": "<md5 of the checkpoint>"}
GET  /health   -> the model's identity: its file's md5 (the hash dvc.lock records for it) and
                  sha256, experiment name (--name), classes, model config, best validation
                  accuracy, device, temperature

The checkpoint is loaded once, at start. Requests are bounded: a body over --max-body-bytes is
refused with 413 before it is read whole, as is a list of more than --max-batch texts. Every
error is one line of JSON, {"error": "..."}, with a 4xx status for bad input (not JSON, not an
object with a list `texts`, an empty list, an item that is not a string, too large), never a
500 with a traceback. Answers are in the order of the texts; a text with no words after
preprocessing gets "label": null and the reason in "note", as in agnews.serving.predict.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request),
# imported inside create_app so that the module imports without the [serve] extra

import argparse
import hashlib
import json
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agnews.config import load_params
from agnews.errors import AgnewsError
from agnews.serving.predict import Prediction, Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000  # a request body larger than this is refused (413)
    max_batch: int = 256  # texts per request


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
    """What /health says about the model being served."""
    payload = predictor.payload
    return {
        "experiment": name,
        "path": str(model_path),
        **file_digests(model_path),
        "format": payload["format"],
        "classes": list(predictor.class_names),
        "model_config": payload["model_config"],
        "ensemble": payload.get("ensemble", 1),
        "best_val_acc": payload.get("best", {}).get("best_val_acc"),
        "device": str(predictor.device),
        "temperature": predictor.temperature,
    }


def parse_texts(body: bytes, limits: Limits) -> list[str]:
    """The texts of a /predict body, or BadRequest saying what is wrong with it."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"body is not JSON ({exc})") from None
    if not isinstance(obj, dict) or "texts" not in obj:
        raise BadRequest(422, 'body must be a JSON object {"texts": ["...", ...]}')
    unknown = sorted(set(obj) - {"texts"})
    if unknown:
        raise BadRequest(422, f"unknown field(s) {', '.join(map(repr, unknown))}; only 'texts'")
    texts = obj["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f"texts must be a list of strings, not {type(texts).__name__}")
    if not texts:
        raise BadRequest(422, "texts is empty: give at least one text")
    if len(texts) > limits.max_batch:
        raise BadRequest(413, f"{len(texts)} texts, more than the limit of {limits.max_batch}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(422, f"texts[{i}] is {type(text).__name__}, not a string")
    return texts


def _answer(p: Prediction) -> dict[str, Any]:
    return {"label": p.label, "probabilities": p.probabilities, "note": p.note}


def create_app(predictor: Predictor, ident: dict[str, Any], limits: Limits) -> Any:
    """The FastAPI application serving `predictor` (one model, loaded by the caller)."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title="agnews", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()  # one forward pass at a time: the model is not shared-state safe

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid request")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": ident, "limits": limits.__dict__}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) < 0):
                raise BadRequest(400, "bad Content-Length")
            if declared is not None and int(declared) > limits.max_body_bytes:
                raise BadRequest(
                    413, f"body of {declared} bytes, more than {limits.max_body_bytes}"
                )
            body = bytearray()
            async for chunk in request.stream():  # a chunked body has no Content-Length
                body += chunk
                if len(body) > limits.max_body_bytes:
                    raise BadRequest(413, f"body over {limits.max_body_bytes} bytes")
            texts = parse_texts(bytes(body), limits)
        except BadRequest as exc:
            return error(exc.status, exc.message)

        def run() -> list[Prediction]:
            with lock:
                return predictor.predict(texts)

        predictions = await run_in_threadpool(run)
        return JSONResponse(
            {"predictions": [_answer(p) for p in predictions], "model": ident["md5"]}
        )

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    parser.add_argument("--max-batch", type=int, default=Limits.max_batch, help="texts/request")
    parser.add_argument(
        "--max-body-bytes", type=int, default=Limits.max_body_bytes, help="bytes/request"
    )
    args = parser.parse_args(argv)
    if args.max_batch < 1 or args.max_body_bytes < 1:
        parser.error("--max-batch and --max-body-bytes must be >= 1")
    try:
        import uvicorn
    except ImportError:
        print("error: serving needs the [serve] extra: pip install -e '.[serve]'", file=sys.stderr)
        return 2
    try:
        model_path = args.model or load_params(args.params).paths.model
        predictor = Predictor(model_path, args.device, args.temperature)
        ident = identity(predictor, model_path, args.name)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    limits = Limits(args.max_body_bytes, args.max_batch)
    app = create_app(predictor, ident, limits)
    print(
        f"serving {model_path} (md5 {ident['md5']}) on http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
