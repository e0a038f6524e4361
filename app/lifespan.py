"""The lifespan: everything with a connection is made here at start-up and closed here at
shutdown, in reverse order, the database engine last. Nothing connects at import time."""

from __future__ import annotations

import gc
import mimetypes
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx
import structlog
from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from app.core.db import open_database
from app.core.email import open_mailer
from app.core.observability import Metrics, configure_logging
from app.core.ratelimit import RateLimiter
from app.core.redis import redis_resilience
from app.core.security import PasswordHasher
from app.core.settings import Settings
from app.core.storage import open_storage

# A failed *connect* is retried by httpx's transport (the request never left, so retrying it
# is safe even for a charge); nothing else is retried behind the caller's back.
HTTP_CONNECT_RETRIES = 2

StartupHook = Callable[[FastAPI], Awaitable[None]]
# A service that lives as long as the app (the job runner): entered after the shared clients
# exist, exited before they close.
Service = Callable[[FastAPI], AbstractAsyncContextManager[object]]


# Pydantic builds a model's schema lazily and not thread-safely: two apps in one process (tests,
# `expose` next to the app) warming their OpenAPI at once in two threads share the same models.
_OPENAPI_LOCK = threading.Lock()


def _build_openapi(app: FastAPI) -> None:
    with _OPENAPI_LOCK:
        app.openapi()


log = structlog.get_logger("app.lifespan")


async def _freeze_startup_objects() -> None:
    """Modules, routes, schemas and pools live as long as the process: move them out of the
    garbage collector's way. Under load, request objects that outlive a young collection fill
    the old generation fast, and every full collection then re-scanned the ~150,000 start-up
    objects: 10 % of the CPU and pauses of 150 ms at 256 connections (bench/README.md).
    Only in a process that serves the app: a test process builds hundreds of apps, frozen
    garbage is never freed, and collecting its large heap first took seconds on a busy machine.
    """
    await anyio.to_thread.run_sync(gc.collect)  # don't freeze start-up garbage with the rest
    gc.freeze()


def make_lifespan(
    startup_hooks: Sequence[StartupHook] = (),
    services: Sequence[Service] = (),
    *,
    freeze_after_startup: bool = False,
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        metrics: Metrics = app.state.metrics
        configure_logging(fmt=settings.effective_log_format, level=settings.log_level)

        async with AsyncExitStack() as stack:
            db = await open_database(settings)
            stack.push_async_callback(db.dispose)  # registered first, so it runs last
            app.state.db = db
            metrics.track_pool(db.engine.pool.checkedout, db.engine.pool.overflow)  # type: ignore[attr-defined]

            redis: Redis | None = None
            if settings.redis_url:
                # A blocking pool waits for a free connection instead of failing with
                # "Too many connections" under load.
                pool = BlockingConnectionPool.from_url(
                    settings.redis_url, max_connections=64, timeout=5, **redis_resilience()
                )
                redis = Redis(connection_pool=pool)
                stack.push_async_callback(pool.disconnect)
                stack.push_async_callback(redis.aclose)
            app.state.redis = redis

            http = httpx.AsyncClient(
                timeout=httpx.Timeout(10.0, connect=5.0),
                transport=httpx.AsyncHTTPTransport(retries=HTTP_CONNECT_RETRIES),
            )
            stack.push_async_callback(http.aclose)
            app.state.http = http

            limiter = RateLimiter(redis, settings.redis_url)
            stack.callback(limiter.close)
            app.state.rate_limiter = limiter

            app.state.storage = open_storage(settings)

            app.state.password_hasher = PasswordHasher(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                queue_limit=settings.password_hash_queue_limit,
            )

            # Built once here, in a worker thread: the first /openapi.json (schema generation)
            # and the first static docs asset (the MIME tables) would otherwise do that blocking
            # work on the event loop.
            await anyio.to_thread.run_sync(_build_openapi, app)
            await anyio.to_thread.run_sync(mimetypes.init)

            app.state.mailer = open_mailer(settings)
            # The job runner: stopped before the engine is disposed, after running jobs had
            # their grace period.
            for service in services:
                await stack.enter_async_context(service(app))

            for hook in startup_hooks:
                await hook(app)

            if freeze_after_startup:
                await _freeze_startup_objects()
            log.info("started", environment=settings.environment, database=db.engine.dialect.name)
            yield
            log.info("stopping")

    return lifespan
