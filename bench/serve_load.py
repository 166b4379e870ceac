"""Load test of `python -m agnews serve` on loopback (127.0.0.1 only), bounded in clients and time.

    python bench/serve_load.py --model models/model.pt --clients 8 --seconds 10 --threads 2
    python bench/serve_load.py --model m.pt --clients 1 --seconds 1      # a quick try

It starts the server (a subprocess, on a free port) with the given model, once with
micro-batching (the server's defaults) and once without (--max-batch-texts 1 --batch-wait-ms 0:
one request per forward pass), and on each runs --clients concurrent clients for --seconds
seconds, first sending one text per request, then --batch-texts texts per request. Each client
holds one keep-alive HTTP/1.1 connection (raw asyncio streams, uvloop when installed) and sends
its next request when the last one is answered. The texts are the corpus' test rows (title and
description, as the model was trained on), in order.

First it times the forward pass alone (agnews.serving.predict.Predictor in this process, passes
of 1, 8 and --batch-texts texts, no HTTP, the server's thread count): the ceiling the service
cannot pass. Printed per run: texts/s, requests/s, p50 and p99 latency, the texts per forward
pass (from the server's /metrics), the CPU the load generator and the server used (in cores:
1.0 = one core busy all the time), the server's RSS before and after, and the count of answers
by status.

Then an adversarial run on a fresh server (with micro-batching): for --seconds each, a flood of
texts made of words never seen before (each new word enters the tokenizer's memo), bodies of
JSON nested as deep as the body limit allows, texts over --max-text-chars, bodies over
--max-body-bytes, and a burst of 4x --max-concurrency clients sending --batch-texts texts each;
it prints the RSS before, at its peak and after each phase, and the statuses. Exit status 1 if
any answer of the normal runs was not 200, or any adversarial answer was a 5xx other than the
burst's 503s (each of which must carry Retry-After).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only, by design
MAX_CLIENTS = 256
MAX_SECONDS = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def corpus_texts(limit: int = 5000) -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from agnews.data.raw import read_csv_split

    rows = read_csv_split(ROOT / "corpus" / "ag_news_58k" / "test.csv.gz")
    return [row.text for row in rows[:limit]]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def batch_stats(port: int) -> tuple[float, float]:
    """(sum, count) of the server's agnews_batch_texts histogram."""
    text = http_get(port, "/metrics")[1].decode()
    total = re.search(r"^agnews_batch_texts_sum (\S+)$", text, re.M)
    count = re.search(r"^agnews_batch_texts_count (\S+)$", text, re.M)
    return float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0


class Server:
    """`python -m agnews serve` in a subprocess on a free loopback port; stopped on exit."""

    def __init__(self, model: str, threads: int, extra: list[str]):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix="serve-load-", suffix=".log")  # noqa: SIM115
        command = [sys.executable, "-m", "agnews", "serve", "--model", model]
        command += ["--host", HOST, "--port", str(self.port), "--threads", str(threads), *extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if http_get(self.port, "/readyz")[0] == 200:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                raise SystemExit(f"the server did not become ready:\n{self.log.read()}")
            time.sleep(0.2)

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def request_bytes(body: bytes, close: bool = False) -> bytes:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    texts: int = 0
    errors: Counter = field(default_factory=Counter)  # connection-level failures


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bool]:
    """(status, whether the server will close the connection, whether it sent Retry-After) of
    one response, its body read."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close, retry_after = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"retry-after":
            retry_after = True
    if length:
        await reader.readexactly(length)
    return status, close, retry_after


async def client(requests: list[tuple[bytes, int]], offset: int, stop_at: float, tally: Tally):
    """Send `requests` ((request bytes, texts in it), from `offset`, cycling) on one keep-alive
    connection until `stop_at`; reconnect when the server closes it."""
    reader = writer = None
    i = offset
    while time.monotonic() < stop_at:
        data, n = requests[i % len(requests)]
        i += 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port_of_run)
            start = time.perf_counter()
            writer.write(data)
            status, close, retry_after = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError) as exc:
            tally.errors[type(exc).__name__] += 1
            close = True
        else:
            tally.latencies.append(time.perf_counter() - start)
            tally.statuses[status] += 1
            if status == 503 and not retry_after:
                tally.errors["503 without Retry-After"] += 1
            if status == 200:
                tally.texts += n
        if close and writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            reader = writer = None
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


port_of_run = 0  # the port the clients of the current run connect to


def run_clients(port: int, requests: list[tuple[bytes, int]], clients: int, seconds: float):
    """(tally, wall seconds, this process's CPU seconds) of `clients` clients for `seconds`."""
    global port_of_run
    port_of_run = port
    tally = Tally()

    async def main() -> None:
        stop_at = time.monotonic() + seconds
        step = max(1, len(requests) // clients)
        await asyncio.gather(*(client(requests, k * step, stop_at, tally) for k in range(clients)))

    cpu0, t0 = own_cpu_seconds(), time.perf_counter()
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(main())
    return tally, time.perf_counter() - t0, own_cpu_seconds() - cpu0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def load_run(server: Server, requests, clients: int, seconds: float) -> dict:
    rss0, cpu0 = server.rss(), server.cpu()
    sum0, count0 = batch_stats(server.port)
    tally, wall, client_cpu = run_clients(server.port, requests, clients, seconds)
    sum1, count1 = batch_stats(server.port)
    lat = sorted(tally.latencies)
    return {
        "texts_per_s": tally.texts / wall,
        "requests_per_s": len(lat) / wall,
        "p50_ms": percentile(lat, 0.50) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "texts_per_pass": (sum1 - sum0) / (count1 - count0) if count1 > count0 else float("nan"),
        "client_cpu_cores": client_cpu / wall,
        "server_cpu_cores": (server.cpu() - cpu0) / wall,
        "rss_before": rss0,
        "rss_after": server.rss(),
        "statuses": dict(sorted(tally.statuses.items())),
        "connection_errors": dict(tally.errors),
        "seconds": wall,
    }


def adversarial_run(server: Server, requests, clients: int, seconds: float) -> dict:
    """Like load_run, with the server's RSS sampled every 0.2 s for its peak."""
    peak = [server.rss()]
    rss0 = peak[0]
    done = [False]

    def sample() -> None:
        while not done[0]:
            with contextlib.suppress(OSError):
                peak.append(server.rss())
            time.sleep(0.2)

    import threading

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        tally, wall, _ = run_clients(server.port, requests, clients, seconds)
    finally:
        done[0] = True
        sampler.join()
    return {
        "requests_per_s": len(tally.latencies) / wall,
        "rss_before": rss0,
        "rss_peak": max(peak),
        "rss_after": server.rss(),
        "statuses": dict(sorted(tally.statuses.items())),
        "connection_errors": dict(tally.errors),
    }


def model_alone(
    model: str, threads: int, texts: list[str], sizes: tuple[int, ...], seconds: float
) -> dict[int, float]:
    """Texts/s of agnews.serving.predict.Predictor alone (what the server's forward pass costs,
    without HTTP) for passes of each size, each run for `seconds`, after a warm-up."""
    import torch

    from agnews.serving.predict import Predictor

    torch.set_num_threads(threads)
    predictor = Predictor(model, "cpu")
    for i in range(0, 256, 8):
        predictor.predict(texts[i : i + 8])
    out = {}
    for n in dict.fromkeys(sizes):
        done, i, start = 0, 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            chunk = texts[i : i + n] if i + n <= len(texts) else texts[:n]
            predictor.predict(chunk)
            done += n
            i = (i + n) % len(texts)
        out[n] = done / (time.perf_counter() - start)
    return out


def flood_requests(count: int, texts: int, words: int, start: int) -> list[tuple[bytes, int]]:
    """Requests of `texts` texts of `words` words each, no word seen before (they carry a
    non-ASCII letter, so each goes through nltk and into the tokenizer's memo)."""
    out, n = [], start
    for _ in range(count):
        batch = []
        for _ in range(texts):
            batch.append(" ".join(f"\u00e9{k:x}z" for k in range(n, n + words)))
            n += words
        out.append((request_bytes(json.dumps({"texts": batch}).encode()), texts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/model.pt", help="checkpoint to serve")
    parser.add_argument("--clients", type=int, default=8, help=f"1..{MAX_CLIENTS} (default 8)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help=f"per run, up to {MAX_SECONDS:g} (default 10)"
    )
    parser.add_argument("--threads", type=int, default=2, help="the server's torch threads (2)")
    parser.add_argument(
        "--batch-texts", type=int, default=64, help="texts per request of the batch runs (64)"
    )
    parser.add_argument(
        "--modes",
        default="batching,no-batching",
        help="comma-separated: batching (the server's defaults), no-batching "
        "(--max-batch-texts 1 --batch-wait-ms 0); default both",
    )
    parser.add_argument("--no-adversarial", action="store_true", help="skip the adversarial run")
    parser.add_argument(
        "--no-model-alone",
        action="store_true",
        help="skip timing the forward pass alone in this process (the ceiling without HTTP)",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="one more argument for the server (repeat), e.g. --server-arg=--batch-wait-ms=1",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be in 1..{MAX_CLIENTS}")
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    if args.threads < 1 or not 1 <= args.batch_texts <= 256:
        parser.error("--threads must be >= 1 and --batch-texts in 1..256")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"batching", "no-batching"}:
        parser.error("--modes: batching and/or no-batching")
    if not Path(args.model).is_file():
        parser.error(f"--model {args.model}: no such file")

    texts = corpus_texts()
    singles = [(request_bytes(json.dumps({"texts": [t]}).encode()), 1) for t in texts]
    k = args.batch_texts
    batches = [
        (request_bytes(json.dumps({"texts": texts[i : i + k]}).encode()), k)
        for i in range(0, len(texts) - k + 1, k)
    ]
    cpu_name = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_name = line.split(":", 1)[1].strip()
                break
    parsers = [m for m in ("httptools", "uvloop") if _importable(m)]
    print(
        f"machine: {cpu_name}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} "
        f"at start; python {platform.python_version()}; server: torch threads {args.threads}, "
        f"{' + '.join(parsers) or 'h11 + asyncio'}; {args.clients} clients x {args.seconds:g} s"
    )
    results: dict = {"clients": args.clients, "seconds": args.seconds, "runs": []}
    ok = True
    header = (
        f"{'run':<26} {'texts/s':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'texts/pass':>10} "
        f"{'client CPU':>10} {'server CPU':>10} {'RSS before -> after':>20}  statuses"
    )
    if not args.no_model_alone:
        alone = model_alone(args.model, args.threads, texts, (1, 8, k), min(args.seconds, 3.0))
        results["model_alone_texts_per_s"] = alone
        print(
            "the forward pass alone, in this process (no HTTP), texts/s: "
            + ", ".join(f"{n} a pass: {v:.0f}" for n, v in alone.items())
        )
    print(header)
    for mode in modes:
        extra = [] if mode == "batching" else ["--max-batch-texts", "1", "--batch-wait-ms", "0"]
        with Server(args.model, args.threads, [*extra, *args.server_arg]) as server:
            for label, requests in (("1 text/request", singles), (f"{k} texts/request", batches)):
                r = load_run(server, requests, args.clients, args.seconds)
                name = f"{label}, {mode}"
                results["runs"].append({"run": name, **r})
                ok &= set(r["statuses"]) == {200} and not r["connection_errors"]
                print(
                    f"{name:<26} {r['texts_per_s']:>8.0f} {r['requests_per_s']:>7.0f} "
                    f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['texts_per_pass']:>10.1f} "
                    f"{r['client_cpu_cores']:>10.2f} {r['server_cpu_cores']:>10.2f} "
                    f"{mib(r['rss_before']) + ' -> ' + mib(r['rss_after']):>20}  "
                    f"{r['statuses']}{_errors(r)}",
                    flush=True,
                )
    if not args.no_adversarial:
        with Server(args.model, args.threads, args.server_arg) as server:
            limits = json.loads(http_get(server.port, "/health")[1])["limits"]
            run_clients(server.port, singles[:200], 1, min(args.seconds, 1.0))  # warm, as above
            max_chars, max_body = limits["max_text_chars"], limits["max_body_bytes"]
            depth = (max_body - 20) // 2
            nested = b'{"texts": ' + b"[" * depth + b"]" * depth + b"}"
            phases = [
                (
                    f"unique-word flood ({k} texts x 50 new words/request)",
                    flood_requests(max(20, int(args.seconds * 40)), k, 50, 1 << 20),
                ),
                (f"nested JSON ({len(nested):,} bytes)", [(request_bytes(nested), 1)]),
                (
                    f"texts over --max-text-chars ({max_chars + 1:,} chars)",
                    [(request_bytes(json.dumps({"texts": ["x" * (max_chars + 1)]}).encode()), 1)],
                ),
                (
                    f"bodies over --max-body-bytes ({max_body + 1:,} bytes)",
                    [(request_bytes(b" " * (max_body + 1), close=True), 1)],
                ),
            ]
            burst = min(MAX_CLIENTS, 4 * limits["max_concurrency"])
            phases.append(
                (f"burst: {burst} clients, 4x --max-concurrency, {k} texts each", batches)
            )
            print(
                f"{'adversarial run':<58} {'req/s':>7} {'RSS before / peak / after':>28}  statuses"
            )
            for name, requests in phases:
                clients = burst if name.startswith("burst") else args.clients
                r = adversarial_run(server, requests, clients, args.seconds)
                results["runs"].append({"run": f"adversarial: {name}", **r})
                # the burst is answered 200 or, past --max-concurrency, 503 with Retry-After
                expected = {503} if name.startswith("burst") else set()
                fives = sum(n for s, n in r["statuses"].items() if s >= 500 and s not in expected)
                ok &= fives == 0 and not r["connection_errors"].get("503 without Retry-After")
                rss = f"{mib(r['rss_before'])} / {mib(r['rss_peak'])} / {mib(r['rss_after'])}"
                print(
                    f"{name:<58} {r['requests_per_s']:>7.0f} {rss:>28}  {r['statuses']}{_errors(r)}"
                    f"; unexpected 5xx: {fives}",
                    flush=True,
                )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if not ok:
        print("FAILED: a normal request was not answered 200, or an adversarial one got a 5xx")
    return 0 if ok else 1


def _errors(r: dict) -> str:
    return f" connection errors {r['connection_errors']}" if r["connection_errors"] else ""


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
