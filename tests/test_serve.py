"""python -m agnews serve over real HTTP on loopback: the answers match agnews.serving.predict's,
bad requests are one-line JSON 4xx errors (never a 500 traceback), and 200 concurrent requests
each get their own answers, in order."""

from __future__ import annotations

import http.client
import json
import os
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

LIMITS = Limits(max_body_bytes=20_000, max_batch=8)


@pytest.fixture(scope="module")
def predictor(trained_model):
    return Predictor(trained_model, "cpu")


@pytest.fixture(scope="module")
def server(predictor, trained_model):
    """uvicorn serving the tiny model on a free loopback port, in a thread of this process."""
    import uvicorn

    app = create_app(predictor, identity(predictor, trained_model, "tiny-exp"), LIMITS)
    port = free_ports(1)[0]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    """(status, raw body bytes, parsed JSON or None) of one HTTP request."""
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
    return resp.status, raw, parsed


def post(port: int, obj) -> tuple[int, bytes, dict | None]:
    return request(port, "POST", "/predict", json.dumps(obj).encode(), {"Content-Type": "json"})


def test_health_names_the_model(server, trained_model):
    status, _, body = request(server, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    model = body["model"]
    assert model["experiment"] == "tiny-exp"
    assert model["md5"] == file_digests(trained_model)["md5"]
    assert model["classes"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert model["format"] == 3 and model["model_config"]["cell"] == "rnn"
    assert model["temperature"] == 1.0
    assert body["limits"] == {"max_body_bytes": 20_000, "max_batch": 8}


def test_predict_answers_as_the_predictor_does_in_order(server, predictor):
    texts = ["Stocks rally as oil prices fall", "?!", "Federer wins the final", "NASA probe"]
    status, _, body = post(server, {"texts": texts})
    assert status == 200, body
    expected = [
        {"label": p.label, "probabilities": p.probabilities, "note": p.note}
        for p in predictor.predict(texts)
    ]
    assert body["predictions"] == expected
    assert body["predictions"][1] == {
        "label": None,
        "probabilities": {},
        "note": "no words left after preprocessing",
    }
    assert abs(sum(body["predictions"][0]["probabilities"].values()) - 1) < 0.01


BAD = [
    (b"not json", 400, "body is not JSON"),
    (b"\xff\xfe{", 400, "body is not JSON"),
    (b"", 400, "body is not JSON"),
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
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=[b[2] for b in BAD])
def test_bad_requests_are_one_line_json_4xx(server, body, status, message):
    got, raw, parsed = request(server, "POST", "/predict", body)
    assert got == status, raw
    assert parsed is not None and set(parsed) == {"error"}, raw
    assert message in parsed["error"], parsed
    assert raw.count(b"\n") == 0 and b"Traceback" not in raw


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
    ("method", "path", "status"), [("GET", "/predict", 405), ("GET", "/nowhere", 404)]
)
def test_wrong_routes_are_json_errors_too(server, method, path, status):
    got, raw, parsed = request(server, method, path)
    assert got == status and set(parsed) == {"error"} and b"\n" not in raw


def test_200_concurrent_requests_get_their_own_answers_in_order(server, predictor):
    words = ["oil", "stocks", "match", "league", "nasa", "software", "election", "troops"]

    def texts_of(i: int) -> list[str]:  # distinct for each i: its base-8 digits pick words
        d0, d1, d2 = i % 8, i // 8 % 8, i // 64
        return [f"{words[d0]} {words[(d1 + k) % 8]} " + "market " * (d2 + k) for k in range(3)]

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda i: post(server, {"texts": texts_of(i)}), range(200)))
    for i, (status, raw, body) in enumerate(answers):
        assert status == 200, raw
        expected = [p.probabilities for p in predictor.predict(texts_of(i))]
        assert [p["probabilities"] for p in body["predictions"]] == expected, i
    # the answers really differ between requests, so a mix-up would show
    assert len({json.dumps(a[2]["predictions"]) for a in answers}) > 150


def test_the_command_serves_and_refuses_a_bad_checkpoint(trained_model, tmp_path):
    """`python -m agnews serve` as a user runs it: it answers on its port, and a missing
    checkpoint is one error line and exit 2."""
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
    command += ["--port", str(port), "--name", "cli-run"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = request(port, "GET", "/health")
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert status == 200 and body["model"]["experiment"] == "cli-run"
        status, _, body = post(port, {"texts": ["Federer wins the final"]})
        assert status == 200 and body["model"] == file_digests(trained_model)["md5"]
        assert body["predictions"][0]["label"] in ("World", "Sports", "Business", "Sci/Tech")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
