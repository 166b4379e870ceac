"""What a /predict request may be, and how a bad one is told (agnews.serving.serve): the
bounds (Limits), the pydantic request model, the one-line errors for each way a body is wrong,
and reading a body without going past its bound."""

# no `from __future__ import annotations`: pydantic reads the request model's annotations

from dataclasses import dataclass
from typing import Any


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
