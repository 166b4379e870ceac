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
import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

from agnews.config import load_params
from agnews.errors import AgnewsError
from agnews.serving.app import create_app
from agnews.serving.predict import Predictor
from agnews.serving.requests import Limits

log = logging.getLogger(__name__)
access_log = logging.getLogger("agnews.access")


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
