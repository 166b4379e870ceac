"""python -m agnews serve over real HTTP on loopback (uvicorn on a free port): the answers match
agnews.serving.predict's, bad requests (deeply nested JSON and over-long texts included) are
one-line JSON 4xx errors (never a 500 traceback), 200 concurrent requests each get their own
answers, in order; liveness and readiness, /health by GET and HEAD without the server's paths,
the concurrency bound (503 + Retry-After), the time limit (504), micro-batching across requests
(bounded by --max-batch-texts and --batch-wait-ms), request ids, the access log, Prometheus
metrics and the OpenAPI description.

The bounds are checked with a model whose forward pass waits on a gate the test opens: the test
knows what is in flight when it asks, instead of racing the server's timing."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import ROOT
from servers import free_ports

from agnews.serving.predict import Predictor
from agnews.serving.serve import Limits, create_app, file_digests, identity

LIMITS = Limits(max_body_bytes=20_000, max_batch=8, max_text_chars=1000)
CLASSES = ("World", "Sports", "Business", "Sci/Tech")


@pytest.fixture(scope="module")
def predictor(trained_model):
    return Predictor(trained_model, "cpu")


@contextlib.contextmanager
def serving(app):
    """uvicorn serving `app` on a free loopback port, in a thread of this process."""
    import uvicorn

    port = free_ports(1)[0]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


def wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def server(predictor, trained_model):
    app = create_app(predictor, identity(predictor, trained_model, "tiny-exp"), LIMITS)
    with serving(app) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        yield port


class Gated:
    """The real predictor behind a gate: each forward pass records its texts, then waits until
    the test opens the gate (open at first)."""

    def __init__(self, inner: Predictor):
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.passes: list[list[str]] = []

    def predict(self, texts):
        self.passes.append(list(texts))
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        return self.inner.predict(texts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def gated(predictor):
    g = Gated(predictor)
    yield g
    g.gate.set()  # never leave a forward pass waiting


def gated_server(gated, trained_model, **limits):
    """A server of `gated` under LIMITS changed by `limits`, ready, its warm-up pass forgotten."""
    merged = Limits(**{**LIMITS.__dict__, **limits})
    app = create_app(gated, identity(gated.inner, trained_model, None), merged)
    return serving(app)


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    """(status, raw body bytes, parsed JSON or None, headers) of one HTTP request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return resp.status, raw, parsed, {k.lower(): v for k, v in resp.getheaders()}


def post(port: int, obj, headers=None):
    return request(port, "POST", "/predict", json.dumps(obj).encode(), headers)


def gauge(port: int, name: str) -> float:
    """One of the server's gauges, read from /metrics."""
    text = request(port, "GET", "/metrics")[1].decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def in_flight(port: int) -> float:
    return gauge(port, "agnews_predict_in_flight")


def queued(port: int) -> float:
    return gauge(port, "agnews_batch_queue_requests")


def expected(predictor, texts):
    return [
        {"label": p.label, "probabilities": p.probabilities, "note": p.note}
        for p in predictor.predict(texts)
    ]


def test_health_names_the_model_by_get_and_head_without_its_path(server, trained_model):
    status, raw, body, _ = request(server, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    model = body["model"]
    assert model["experiment"] == "tiny-exp"
    assert model["md5"] == file_digests(trained_model)["md5"]
    assert model["sha256"] == file_digests(trained_model)["sha256"]
    assert model["classes"] == list(CLASSES)
    assert model["format"] == 3 and model["model_config"]["cell"] == "rnn"
    assert model["temperature"] == 1.0
    assert body["limits"] == LIMITS.__dict__
    # nothing about where the checkpoint lies on the server
    assert "path" not in model
    assert str(trained_model.parent).encode() not in raw and b"model.pt" not in raw
    status, raw, _, headers = request(server, "HEAD", "/health")
    assert status == 200 and raw == b"" and headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes_answer_get_and_head(server, path):
    status, _, body, _ = request(server, "GET", path)
    assert status == 200 and body["status"] in ("alive", "ready")
    assert request(server, "HEAD", path)[0] == 200


def test_predict_answers_as_the_predictor_does_in_order(server, predictor):
    texts = ["Stocks rally as oil prices fall", "?!", "Federer wins the final", "NASA probe"]
    status, _, body, _ = post(server, {"texts": texts})
    assert status == 200, body
    assert body["predictions"] == expected(predictor, texts)
    assert body["predictions"][1] == {
        "label": None,
        "probabilities": {},
        "note": "no words left after preprocessing",
    }
    assert abs(sum(body["predictions"][0]["probabilities"].values()) - 1) < 0.01


DEEP = 5000  # levels of nesting: the stdlib's json.loads raises RecursionError (limit 1000)
BAD = [
    (b"not json", 400, "body is not JSON"),
    (b"\xff\xfe{", 400, "body is not JSON"),
    (b"", 400, "body is not JSON"),
    (b"[" * DEEP + b"]" * DEEP, 400, "body is not JSON (recursion limit exceeded"),
    (b'{"texts": ' + b"[" * DEEP + b"]" * DEEP + b"}", 400, "recursion limit exceeded"),
    (b'{"texts": [' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"]}", 400, "recursion limit"),
    (b'["a", "b"]', 422, "must be a JSON object"),
    (b'{"text": ["a"]}', 422, "must be a JSON object"),
    (b'{"texts": ["a"], "extra": 1}', 422, "unknown field(s) 'extra'"),
    (b'{"texts": "a headline"}', 422, "texts must be a list of strings, not str"),
    (b'{"texts": []}', 422, "texts is empty"),
    (b'{"texts": ["ok", 3]}', 422, "texts[1] is int, not a string"),
    (b'{"texts": ["ok", null]}', 422, "texts[1] is NoneType, not a string"),
    (b'{"texts": [["nested"]]}', 422, "texts[0] is list, not a string"),
    (json.dumps({"texts": ["t"] * 9}).encode(), 413, "9 texts, more than the limit of 8"),
    (json.dumps({"texts": ["x" * 30_000]}).encode(), 413, "more than 20000"),
    (
        json.dumps({"texts": ["ok", "ok", "y" * 1001]}).encode(),
        413,
        "texts[2] has 1001 characters, more than the limit of 1000",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=[b[2] for b in BAD])
def test_bad_requests_are_one_line_json_4xx(server, body, status, message):
    got, raw, parsed, headers = request(server, "POST", "/predict", body)
    assert got == status, raw[:300]
    assert parsed is not None and set(parsed) == {"error"}, raw[:300]
    assert message in parsed["error"], parsed
    assert raw.count(b"\n") == 0 and b"Traceback" not in raw
    assert headers["content-type"] == "application/json"


def test_a_text_of_exactly_the_limit_is_classified(server):
    status, _, body, _ = post(server, {"texts": ["oil " * 250]})  # 1000 characters
    assert status == 200 and body["predictions"][0]["label"] in CLASSES


def test_an_oversize_chunked_body_is_refused_while_read(server):
    """No Content-Length: the body is counted as it arrives."""
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=60)
    try:
        chunks = (b'{"texts": ["' if i == 0 else b"y" * 1000 for i in range(40))
        conn.request("POST", "/predict", body=chunks, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read()) == {"error": "body over 20000 bytes"}
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/predict", 405), ("HEAD", "/predict", 405), ("GET", "/nowhere", 404)],
)
def test_wrong_routes_are_json_errors_too(server, method, path, status):
    got, raw, parsed, _ = request(server, method, path)
    assert got == status
    if method != "HEAD":
        assert set(parsed) == {"error"} and b"\n" not in raw


def test_every_response_carries_a_request_id(server):
    ids = set()
    for method, path, body in [
        ("GET", "/health", None),
        ("GET", "/livez", None),
        ("GET", "/nowhere", None),
        ("POST", "/predict", b"not json"),
        ("POST", "/predict", b'{"texts": ["oil"]}'),
        ("GET", "/metrics", None),
    ]:
        headers = request(server, method, path, body)[3]
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"]), (path, headers)
        ids.add(headers["x-request-id"])
    assert len(ids) == 6  # a new one each time
    given = {"X-Request-ID": "trace-42:abc"}
    assert post(server, {"texts": ["oil"]}, given)[3]["x-request-id"] == "trace-42:abc"
    for unusable in ("has space", "x" * 129):  # not echoed: a fresh id instead
        got = post(server, {"texts": ["oil"]}, {"X-Request-ID": unusable})[3]["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", got)


def test_200_concurrent_requests_get_their_own_answers_in_order(server, predictor):
    words = ["oil", "stocks", "match", "league", "nasa", "software", "election", "troops"]

    def texts_of(i: int) -> list[str]:  # distinct for each i: its base-8 digits pick words
        d0, d1, d2 = i % 8, i // 8 % 8, i // 64
        return [f"{words[d0]} {words[(d1 + k) % 8]} " + "market " * (d2 + k) for k in range(3)]

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda i: post(server, {"texts": texts_of(i)}), range(200)))
    for i, (status, raw, body, _) in enumerate(answers):
        assert status == 200, raw
        want = [p.probabilities for p in predictor.predict(texts_of(i))]
        assert [p["probabilities"] for p in body["predictions"]] == want, i
    # the answers really differ between requests, so a mix-up would show
    assert len({json.dumps(a[2]["predictions"]) for a in answers}) > 150


def test_not_ready_until_the_first_pass_ran(gated, trained_model):
    """Liveness answers at once; readiness, /health and /predict say 503 (with Retry-After)
    until the warm-up forward pass is done."""
    gated.gate.clear()
    with gated_server(gated, trained_model) as port:
        wait_until(lambda: gated.passes == [["warm up"]], "the warm-up pass")
        assert request(port, "GET", "/livez")[0] == 200
        for method, path in [("GET", "/readyz"), ("GET", "/health"), ("POST", "/predict")]:
            body = b'{"texts": ["oil"]}' if method == "POST" else None
            status, _, parsed, headers = request(port, method, path, body)
            assert status == 503 and parsed["error"].startswith("not ready: starting"), path
            assert headers["retry-after"] == "1"
        assert request(port, "HEAD", "/readyz")[0] == 503
        gated.gate.set()
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        assert post(port, {"texts": ["oil"]})[0] == 200


def test_requests_beyond_max_concurrency_get_503_with_retry_after(gated, trained_model, predictor):
    with gated_server(gated, trained_model, max_concurrency=2) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        gated.gate.clear()
        with ThreadPoolExecutor(max_workers=2) as pool:
            held = [pool.submit(post, port, {"texts": [f"oil {i}"]}) for i in range(2)]
            wait_until(lambda: in_flight(port) == 2, "two requests in flight")
            status, raw, body, headers = post(port, {"texts": ["one too many"]})
            assert status == 503 and headers["retry-after"] == "1", raw
            assert body["error"].startswith("busy: 2 requests in flight"), body
            assert b"\n" not in raw
            gated.gate.set()
            answers = [f.result() for f in held]
        for i, (status, _, body, _) in enumerate(answers):
            assert status == 200 and body["predictions"] == expected(predictor, [f"oil {i}"])
        assert in_flight(port) == 0
        assert post(port, {"texts": ["oil"]})[0] == 200  # room again


def test_a_request_past_the_time_limit_gets_504_and_the_server_goes_on(
    gated, trained_model, predictor
):
    with gated_server(gated, trained_model, request_timeout=0.5) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        gated.gate.clear()  # the forward pass hangs until the test opens the gate
        status, raw, body, _ = post(port, {"texts": ["oil"]})
        assert status == 504, raw
        assert body == {"error": "no answer within 0.5 s (--request-timeout)"}
        gated.gate.set()
        status, _, body, _ = post(port, {"texts": ["match"]})
        assert status == 200 and body["predictions"] == expected(predictor, ["match"])
        assert in_flight(port) == 0


def test_concurrent_requests_share_a_forward_pass_each_getting_its_own_answers(
    gated, trained_model, predictor
):
    """While one pass runs, 10 requests arrive: the next pass holds all their texts, and each
    request gets exactly its own predictions, in order."""
    words = ["oil", "stocks", "match", "league", "nasa", "software", "election", "troops"]
    texts_of = {
        i: [f"{words[i % 8]} {words[(i + k) % 8]} {i}" for k in range(i % 3 + 1)] for i in range(10)
    }
    with gated_server(gated, trained_model) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        gated.passes.clear()
        gated.gate.clear()
        with ThreadPoolExecutor(max_workers=11) as pool:
            first = pool.submit(post, port, {"texts": ["the first"]})
            wait_until(lambda: len(gated.passes) == 1, "the first pass")
            rest = {i: pool.submit(post, port, {"texts": t}) for i, t in texts_of.items()}
            wait_until(lambda: queued(port) == 10, "ten requests queued")
            gated.gate.set()
            assert first.result()[0] == 200
            answers = {i: f.result() for i, f in rest.items()}
    assert len(gated.passes) == 2, gated.passes
    assert sorted(gated.passes[1]) == sorted(t for ts in texts_of.values() for t in ts)
    for i, (status, raw, body, _) in answers.items():
        assert status == 200, raw
        assert body["predictions"] == expected(predictor, texts_of[i]), i


def test_max_batch_texts_bounds_a_pass_and_1_turns_batching_off(gated, trained_model, predictor):
    def run(max_batch_texts: int, requests: list[list[str]]) -> list[list[str]]:
        with gated_server(gated, trained_model, max_batch_texts=max_batch_texts) as port:
            wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
            gated.passes.clear()
            gated.gate.clear()
            with ThreadPoolExecutor(max_workers=len(requests) + 1) as pool:
                first = pool.submit(post, port, {"texts": ["the first"]})
                wait_until(lambda: len(gated.passes) == 1, "the first pass")
                futures = [pool.submit(post, port, {"texts": t}) for t in requests]
                wait_until(lambda: queued(port) == len(requests), "requests queued")
                gated.gate.set()
                assert first.result()[0] == 200
                for texts, f in zip(requests, futures, strict=True):
                    status, _, body, _ = f.result()
                    assert status == 200 and body["predictions"] == expected(predictor, texts)
            return gated.passes[1:]

    pairs = [[f"oil {i}", f"match {i}"] for i in range(6)]
    passes = run(5, [*pairs, [f"nasa {k}" for k in range(7)]])
    # a pass holds whole requests within 5 texts; the 7-text request is a pass of its own
    assert [p for p in passes if len(p) > 5] == [[f"nasa {k}" for k in range(7)]], passes
    assert sum(map(len, passes)) == 19 and 4 in map(len, passes)  # two requests in a pass
    passes = run(1, pairs)
    assert sorted(passes) == sorted(pairs)  # one request per pass


def test_a_pass_waits_for_a_request_still_being_read(gated, trained_model, predictor):
    """A request whose body is still arriving joins the pass of one that is complete (within
    --batch-wait-ms), instead of a pass of its own right after."""
    body = json.dumps({"texts": ["slow sender"]}).encode()
    with gated_server(gated, trained_model, batch_wait_ms=30_000) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        gated.passes.clear()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as slow:
            slow.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body[:5]
            )
            wait_until(lambda: in_flight(port) == 1, "the slow request admitted")
            with ThreadPoolExecutor(max_workers=1) as pool:
                quick = pool.submit(post, port, {"texts": ["quick sender"]})
                wait_until(lambda: in_flight(port) == 2, "the quick request admitted")
                slow.sendall(body[5:])
                status, _, answer, _ = quick.result()
            assert status == 200 and answer["predictions"] == expected(predictor, ["quick sender"])
            reply = b""
            while not reply.endswith(b"}"):
                reply += slow.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200 ")
    assert gated.passes == [["quick sender", "slow sender"]]


def test_after_a_shared_pass_the_next_one_waits_for_more_requests(gated, trained_model, predictor):
    """Concurrent clients (the last pass served several requests): a lone queued request waits
    (at most --batch-wait-ms) for the next one to come, and they share a pass."""
    with gated_server(gated, trained_model, batch_wait_ms=30_000) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        gated.passes.clear()
        gated.gate.clear()
        with ThreadPoolExecutor(max_workers=3) as pool:
            first = pool.submit(post, port, {"texts": ["the first"]})
            wait_until(lambda: len(gated.passes) == 1, "the first pass")
            pair = [pool.submit(post, port, {"texts": [t]}) for t in ("oil a", "oil b")]
            wait_until(lambda: queued(port) == 2, "two requests queued")
            gated.gate.set()
            assert [f.result()[0] for f in (first, *pair)] == [200, 200, 200]
            assert len(gated.passes) == 2  # the pair shared the second pass
            lone = pool.submit(post, port, {"texts": ["lone"]})
            wait_until(lambda: queued(port) == 1, "the lone request queued")
            assert len(gated.passes) == 2  # it waits for company
            status, _, body, _ = post(port, {"texts": ["company"]})
            assert status == 200 and body["predictions"] == expected(predictor, ["company"])
            assert lone.result()[2]["predictions"] == expected(predictor, ["lone"])
    assert gated.passes[2] == ["lone", "company"], gated.passes


def test_metrics_count_requests_errors_latency_and_batches(gated, trained_model):
    with gated_server(gated, trained_model) as port:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness")
        for _ in range(3):
            post(port, {"texts": ["oil", "match"]})
        post(port, {"texts": []})
        request(port, "POST", "/predict", b"not json")
        request(port, "GET", "/nowhere/1")
        request(port, "GET", "/nowhere/2")
        status, raw, _, headers = request(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    text = raw.decode()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
        assert found, series
        return float(found.group(1))

    assert value('agnews_http_requests_total{route="/predict",status="200"}') == 3
    assert value('agnews_http_errors_total{route="/predict",status="422"}') == 1
    assert value('agnews_http_errors_total{route="/predict",status="400"}') == 1
    assert value('agnews_http_errors_total{route="other",status="404"}') == 2  # one label
    assert value('agnews_http_request_duration_seconds_count{route="/predict"}') == 5
    assert value('agnews_http_request_duration_seconds_bucket{le="+Inf",route="/predict"}') == 5
    assert value("agnews_batch_texts_count") == 3  # three passes of 2 texts (not the warm-up)
    assert value("agnews_batch_texts_sum") == 6
    assert value("agnews_batch_requests_sum") == 3
    assert value("agnews_predict_texts_total") == 6
    assert value("agnews_predict_in_flight") == 0 and value("agnews_batch_queue_requests") == 0
    assert value("process_resident_memory_bytes") > 0


def test_openapi_describes_predict_with_the_limits(server):
    status, _, spec, _ = request(server, "GET", "/openapi.json")
    assert status == 200
    op = spec["paths"]["/predict"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    texts = schema["properties"]["texts"]
    assert schema["additionalProperties"] is False and schema["required"] == ["texts"]
    assert (texts["minItems"], texts["maxItems"]) == (1, 8)
    assert texts["items"] == {"type": "string", "maxLength": 1000}
    assert {"200", "400", "413", "422", "503", "504"} <= set(op["responses"])
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["properties"].keys() == {"error"}
    assert {"/health", "/livez", "/readyz", "/metrics"} <= set(spec["paths"])
    status, raw, _, headers = request(server, "GET", "/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/openapi.json" in raw


def test_the_command_serves_logs_access_and_refuses_a_bad_checkpoint(trained_model, tmp_path):
    """`python -m agnews serve` as a user runs it: it answers on its port with every flag set,
    --access-log prints one line per request with its id, and a missing checkpoint is one error
    line and exit 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    bad = subprocess.run(
        [sys.executable, "-m", "agnews", "serve", "--model", str(tmp_path / "none.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("error: ") and "none.pt: missing" in bad.stderr

    port = free_ports(1)[0]
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "agnews", "serve", "--model", str(trained_model)]
    command += ["--port", str(port), "--name", "cli-run", "--access-log", "--threads", "1"]
    command += ["--max-batch", "4", "--max-body-bytes", "5000", "--max-text-chars", "100"]
    command += ["--max-concurrency", "3", "--request-timeout", "20", "--batch-wait-ms", "1"]
    command += ["--max-batch-texts", "16"]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body, _ = request(port, "GET", "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        status, _, body, _ = request(port, "GET", "/health")
        assert status == 200 and body["model"]["experiment"] == "cli-run"
        assert body["limits"] == {
            "max_body_bytes": 5000,
            "max_batch": 4,
            "max_text_chars": 100,
            "max_concurrency": 3,
            "request_timeout": 20.0,
            "batch_wait_ms": 1.0,
            "max_batch_texts": 16,
        }
        status, _, body, _ = post(
            port, {"texts": ["Federer wins the final"]}, {"X-Request-ID": "t-1"}
        )
        assert status == 200 and body["model"] == file_digests(trained_model)["md5"]
        assert body["predictions"][0]["label"] in CLASSES
        assert post(port, {"texts": ["x" * 101]})[0] == 413
        assert request(port, "GET", "/a%0Aforged%20line")[0] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = log.read_text().splitlines()
    access = [line for line in lines if " agnews.access " in line]
    assert any(' t-1 "POST /predict HTTP/1.1" 200 ' in line for line in access), lines
    assert any('"POST /predict HTTP/1.1" 413 ' in line for line in access), lines
    assert any('"GET /health HTTP/1.1" 200 ' in line for line in access), lines
    assert not any("Traceback" in line for line in lines), lines
    assert any('"GET /a\\nforged line HTTP/1.1" 404 ' in line for line in access), lines
    assert not any(line.startswith("forged") for line in lines), lines
