"""The service's Prometheus metrics (prometheus_client), one registry per application, served
as text by GET /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "ROUTES", "ServiceMetrics"]

# Routes get their own label value; anything else (404s, probes of random paths) is "other",
# so a scan of made-up paths cannot grow the number of series.
ROUTES = frozenset(
    {"/predict", "/health", "/livez", "/readyz", "/metrics", "/docs", "/openapi.json"}
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "agnews_http_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.errors = Counter(
            "agnews_http_errors",
            "HTTP requests answered with an error status (>= 400)",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "agnews_http_request_duration_seconds",
            "time from a request's arrival to the end of its answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "agnews_predict_in_flight",
            "/predict requests admitted and not yet answered",
            registry=r,
        )
        self.queued_requests = Gauge(
            "agnews_batch_queue_requests", "requests waiting for a forward pass", registry=r
        )
        self.queued_texts = Gauge(
            "agnews_batch_queue_texts", "texts waiting for a forward pass", registry=r
        )
        self.texts = Counter("agnews_predict_texts", "texts classified", registry=r)
        self.batch_texts = Histogram(
            "agnews_batch_texts", "texts per forward pass", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "agnews_batch_requests", "requests per forward pass", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "agnews_batch_duration_seconds",
            "time of one forward pass (tokenization included)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        ProcessCollector(registry=r)  # process_resident_memory_bytes, CPU seconds, open fds
        self._latency_of = {route: self.latency.labels(route) for route in ROUTES | {"other"}}

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        code = str(status)
        self.requests.labels(route, code).inc()
        if status >= 400:
            self.errors.labels(route, code).inc()
        self._latency_of[route].observe(seconds)

    def observe_batch(self, requests: int, texts: int, seconds: float) -> None:
        self.batch_requests.observe(requests)
        self.batch_texts.observe(texts)
        self.batch_seconds.observe(seconds)
        self.texts.inc(texts)

    def render(self) -> bytes:
        return generate_latest(self.registry)
