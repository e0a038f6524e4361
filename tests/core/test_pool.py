"""The pool is SQLAlchemy's stock `AsyncAdaptedQueuePool`; bounded waits and fairness under load
come from admission control in front of it (`app.core.admission.DatabaseAdmission`): at most
`limit` API requests at a time, a bounded first-come-first-served queue, and beyond it an
immediate 503 `database_busy` with `Retry-After` instead of a long wait for a connection.

The middleware is tested on a small ASGI app whose requests hold their turn until the test lets
them go; the whole app is tested on the real database, its requests held by a lock the test
takes on the `users` table."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from starlette.types import Receive, Scope, Send

from app.core.admission import DatabaseAdmission
from app.core.db import create_engine
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import ON_POSTGRES, PASSWORD, make_settings, pool_of


def test_the_engine_uses_the_stock_pool_sized_from_settings(database_url: str) -> None:
    engine = create_engine(make_settings(database_url, db_pool_size=3, db_max_overflow=4))
    pool = pool_of(engine)
    assert type(pool) is AsyncAdaptedQueuePool
    assert pool.size() == 3
    assert pool.timeout() == make_settings(database_url).db_pool_timeout
    assert make_settings(database_url).effective_db_admission_limit == 10  # DB_POOL_SIZE


# --- the middleware, on an app whose requests wait for the test ------------------------------


class HeldApp:
    """An ASGI app that records the order requests reach it and answers each only once the
    test releases it."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.everyone_released = False

    def release(self, path: str) -> None:
        self.gates.setdefault(path, asyncio.Event()).set()

    def release_all(self) -> None:
        """Lets every request through, including those still waiting for a turn."""
        self.everyone_released = True
        for path in self.gates:
            self.release(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        self.arrived.append(path)
        if not (path.endswith("/free") or self.everyone_released):
            await self.gates.setdefault(path, asyncio.Event()).wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": path.encode()})


@asynccontextmanager
async def admitted(
    limit: int, max_waiting: int, wait_seconds: float = 30
) -> AsyncIterator[tuple[DatabaseAdmission, HeldApp, AsyncClient]]:
    inner = HeldApp()
    admission = DatabaseAdmission(inner, limit=limit, max_waiting=max_waiting, timeout=wait_seconds)
    transport = ASGITransport(app=admission)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            yield admission, inner, client
        finally:
            inner.release_all()


async def until(condition: Callable[[], bool]) -> None:
    """Polls a condition of the middleware's own state (nothing to wait on for it)."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def start(client: AsyncClient, path: str, **kwargs: Any) -> asyncio.Task[Response]:
    return asyncio.create_task(client.get(path, **kwargs))


async def test_requests_beyond_the_queue_get_an_immediate_503_with_retry_after() -> None:
    async with admitted(limit=2, max_waiting=3) as (admission, inner, client):
        running = [start(client, f"/api/v1/r{i}") for i in range(2)]
        await until(lambda: len(inner.arrived) == 2)
        queued = [start(client, f"/api/v1/q{i}") for i in range(3)]
        await until(lambda: admission.waiting == 3)

        # Nobody has finished, yet every request beyond the bound is answered at once.
        with anyio.fail_after(10):
            refused = await asyncio.gather(*(client.get(f"/api/v1/x{i}") for i in range(4)))

        assert [r.status_code for r in refused] == [503] * 4
        for response in refused:
            assert response.headers["retry-after"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "database_busy"
        assert not any(task.done() for task in running + queued)

        inner.release_all()
        with anyio.fail_after(10):
            served = await asyncio.gather(*running, *queued)
        assert [r.status_code for r in served] == [200] * 5
        assert admission.waiting == 0
        assert not admission.turns.locked()


async def test_waiters_are_served_first_come_first_served() -> None:
    async with admitted(limit=1, max_waiting=10) as (admission, inner, client):
        first = start(client, "/api/v1/w0")
        await until(lambda: inner.arrived == ["/api/v1/w0"])
        waiters = []
        for number in range(1, 7):
            waiters.append(start(client, f"/api/v1/w{number}"))
            await until(lambda number=number: admission.waiting == number)  # queued in order

        for number in range(7):
            inner.release(f"/api/v1/w{number}")
        with anyio.fail_after(10):
            await asyncio.gather(first, *waiters)

        assert inner.arrived == [f"/api/v1/w{number}" for number in range(7)]


async def test_a_request_that_waits_too_long_gets_a_503() -> None:
    async with admitted(limit=1, max_waiting=10, wait_seconds=0.2) as (admission, inner, client):
        holder = start(client, "/api/v1/slow")
        await until(lambda: inner.arrived == ["/api/v1/slow"])

        with anyio.fail_after(10):
            late = await client.get("/api/v1/late")

        assert late.status_code == 503
        assert late.json()["code"] == "database_busy"
        assert late.headers["retry-after"] == "1"
        assert admission.waiting == 0
        assert "/api/v1/late" not in inner.arrived
        inner.release("/api/v1/slow")
        assert (await holder).status_code == 200


async def test_a_waiter_that_goes_away_leaves_the_queue() -> None:
    async with admitted(limit=1, max_waiting=1) as (admission, inner, client):
        holder = start(client, "/api/v1/holder")
        await until(lambda: inner.arrived == ["/api/v1/holder"])
        gone = start(client, "/api/v1/gone")
        await until(lambda: admission.waiting == 1)

        gone.cancel()  # the client disconnected while waiting
        await until(lambda: admission.waiting == 0)

        # Its place in the queue is free again, and the turn it never took is not lost.
        next_one = start(client, "/api/v1/next")
        await until(lambda: admission.waiting == 1)
        inner.release("/api/v1/holder")
        inner.release("/api/v1/next")
        with anyio.fail_after(10):
            assert (await next_one).status_code == 200
        assert (await holder).status_code == 200
        assert "/api/v1/gone" not in inner.arrived
        assert not admission.turns.locked()


async def test_paths_outside_the_api_and_uploads_do_not_wait_for_a_turn() -> None:
    async with admitted(limit=1, max_waiting=0) as (_, inner, client):
        holder = start(client, "/api/v1/holder")
        await until(lambda: inner.arrived == ["/api/v1/holder"])

        with anyio.fail_after(10):
            health = await client.get("/health/free")
            upload = await client.post(
                "/api/v1/files/free", files={"file": ("a.txt", b"abc", "text/plain")}
            )
            refused = await client.get("/api/v1/free")

        assert health.status_code == 200
        assert upload.status_code == 200
        assert refused.status_code == 503
        inner.release("/api/v1/holder")
        await holder


async def test_the_turn_ends_when_the_response_starts() -> None:
    """A response's body needs no connection (the session closed before it started): a slow
    reader does not keep others waiting."""
    streaming_started = asyncio.Event()
    finish_stream = asyncio.Event()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/api/v1/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            streaming_started.set()
            await finish_stream.wait()
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    admission = DatabaseAdmission(streaming, limit=1, max_waiting=0, timeout=30)
    async with AsyncClient(transport=ASGITransport(app=admission), base_url="http://t") as client:
        stream = asyncio.create_task(client.get("/api/v1/stream"))
        with anyio.fail_after(10):
            await streaming_started.wait()
            other = await client.get("/api/v1/other")
        finish_stream.set()
        assert other.status_code == 200
        assert (await stream).status_code == 200


# --- the whole app on the real database --------------------------------------------------------


@asynccontextmanager
async def users_table_locked(engine: AsyncEngine) -> AsyncIterator[None]:
    """Another client holds a lock that makes every sign-up (an INSERT into users) wait."""
    async with engine.connect() as conn:
        if ON_POSTGRES:
            await conn.exec_driver_sql("BEGIN")
            await conn.exec_driver_sql("LOCK TABLE users IN SHARE MODE")
        else:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            await conn.exec_driver_sql("ROLLBACK")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        db_pool_size=2,
        db_max_overflow=1,
        db_admission_limit=2,
        db_admission_queue=2,
        sqlite_busy_timeout_ms=60_000,
    )


async def test_a_burst_beyond_the_bound_is_shed_at_once_and_no_connection_leaks(
    settings: Settings, cleanup_engine: AsyncEngine
) -> None:
    application = await anyio.to_thread.run_sync(create_app, settings)
    async with (
        LifespanManager(application, startup_timeout=30, shutdown_timeout=30) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        admission = find_admission(application)
        pool = pool_of(application.state.db.engine)
        emails = [f"burst-{i}-{uuid.uuid4().hex[:8]}@example.com" for i in range(10)]
        body = {"password": PASSWORD, "name": "Burst"}

        async with users_table_locked(cleanup_engine):
            held = [
                asyncio.create_task(client.post("/api/v1/users", json={**body, "email": e}))
                for e in emails[:4]
            ]
            await until(lambda: admission.waiting == 2)  # 2 in the database, 2 waiting
            with anyio.fail_after(20):
                shed = await asyncio.gather(
                    *(client.post("/api/v1/users", json={**body, "email": e}) for e in emails[4:])
                )
            assert [r.status_code for r in shed] == [503] * 6
            assert {r.json()["code"] for r in shed} == {"database_busy"}
            assert all(r.headers["retry-after"] == "1" for r in shed)
            assert not any(task.done() for task in held)

        with anyio.fail_after(60):
            served = await asyncio.gather(*held)
        assert [r.status_code for r in served] == [201] * 4, [r.text for r in served]
        await until(lambda: pool.checkedout() == 0)
        assert admission.waiting == 0
        assert pool.checkedin() <= 3  # never past pool size + overflow


def find_admission(application: FastAPI) -> DatabaseAdmission:
    """The app's admission middleware instance (Starlette builds the stack on first use)."""
    app: Any = application.middleware_stack
    while app is not None and not isinstance(app, DatabaseAdmission):
        app = getattr(app, "app", None)
    assert isinstance(app, DatabaseAdmission), "no DatabaseAdmission in the middleware stack"
    return app
