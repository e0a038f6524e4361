"""Structured logs and Prometheus metrics: the logging set-up, the app's metrics, and the
access-log middleware that counts and logs every request.

Pure ASGI (no BaseHTTPMiddleware) so bodies stream through untouched.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("app.request")


def configure_logging(*, fmt: str, level: str) -> None:
    """structlog for our logs, and the stdlib loggers (uvicorn, sqlalchemy) routed through the
    same renderer, so every line is JSON (or console) and carries the request id."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access log; uvicorn's would be a second line per request.
    logging.getLogger("uvicorn.access").disabled = True


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide.

    With several server processes (`serve --workers N`), `multiprocess_dir` is the directory
    prometheus_client shares between them (PROMETHEUS_MULTIPROC_DIR, set by `serve` before the
    workers start): every process writes its counters and histograms there, and a scrape,
    whichever process answers it, reads all of them. The pool gauges are live functions of the
    process that answers, so they come from its own registry."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self._live_names: set[str] = set()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being served.",
            registry=self.registry,
            multiprocess_mode="livesum",  # the sum over the server processes alive
        )

    def track_pool(self, checked_out: Callable[[], int], overflow: Callable[[], int]) -> None:
        pool_in_use = Gauge(
            "db_pool_connections_in_use",
            "Database connections checked out of the pool (of the process answering).",
            registry=self.registry,
        )
        pool_in_use.set_function(lambda: float(checked_out()))
        pool_overflow = Gauge(
            "db_pool_overflow",
            "Connections open beyond the pool size (negative: pool not yet full).",
            registry=self.registry,
        )
        pool_overflow.set_function(lambda: float(overflow()))
        self._live_names |= {"db_pool_connections_in_use", "db_pool_overflow"}

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        collector = MultiProcessCollector(None, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        shared = [
            family
            for family in collector.collect()  # type: ignore[no-untyped-call]
            if family.name not in self._live_names
        ]
        names = {family.name for family in shared}
        own = [family for family in self.registry.collect() if family.name not in names]
        combined = CollectorRegistry(auto_describe=False)
        combined.register(_Families([*shared, *own]))
        return generate_latest(combined)


class _Families:
    """A collector of metric families already collected."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def _route_template(scope: Scope) -> str:
    """The matched route's path template as a client sees it (`/api/v1/users/{user_id}`).

    FastAPI >= 0.16x keeps included routers nested: `scope["route"]` is the original APIRoute,
    whose `path_format` lacks the routers' prefixes (`/users/{user_id}`). The full template is
    on the effective route context FastAPI records in `scope["fastapi"]` (not a public API,
    so tests/health/test_metrics.py pins it); top-level routes have no context and their own
    `path_format` is already complete."""
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    path = getattr(context, "path_format", None)
    if not path:
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
    # Unmatched paths are one label, not one per URL a scanner tries.
    return str(path) if path else "unmatched"


class AccessLogMiddleware:
    """One log line and the request metrics per request, whatever answered it (a route, an
    error handler, a middleware below this one). A response that never started counts as 500."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
