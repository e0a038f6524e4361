"""The real server process: start-up migrates and seeds, SIGTERM and Ctrl-C stop it cleanly —
in-flight requests finish, the exit code is 0, and no database connection is left behind."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.users.models import User
from tests.conftest import PASSWORD, require_postgres
from tests.e2e.conftest import (
    GRACEFUL_SHUTDOWN_SECONDS,
    Server,
    StartServer,
    admin_query,
)

pytestmark = pytest.mark.e2e

# The graceful period plus room for the lifespan shutdown and a slow machine.
EXIT_DEADLINE_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + 10


async def sign_up_and_login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    created = await client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "Over The Wire"}
    )
    assert created.status_code == 201, created.text
    token = await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def assert_clean_log(server: Server) -> None:
    assert "Traceback" not in server.log, server.log
    # The lifespan's shutdown ran (it logs before closing what it opened, engine last).
    assert '"event": "stopping"' in server.log, server.log
    assert "Application shutdown complete" in server.log, server.log


async def count_users(database_url: str) -> int:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(User)) or 0)
    finally:
        await engine.dispose()


async def in_flight(client: httpx.AsyncClient) -> int:
    """Requests the server is serving now, not counting this one."""
    metrics = (await client.get("/metrics")).text
    match = re.search(r"^http_requests_in_flight ([0-9.e+]+)$", metrics, re.MULTILINE)
    assert match, metrics
    return int(float(match.group(1))) - 1


# --- (1) SIGTERM on PostgreSQL: exit 0 and no connection left ----------------------------------


async def test_sigterm_releases_every_postgres_connection(
    start_server: StartServer, fresh_database: str
) -> None:
    require_postgres()
    database = make_url(fresh_database).database
    server = await start_server(fresh_database)

    async with server.client() as client:
        headers = await sign_up_and_login(client, f"{uuid.uuid4().hex[:10]}@example.com")
        me = await client.get("/api/v1/users/me", headers=headers)
        assert me.status_code == 200
        assert (await client.get("/health/ready")).json()["checks"]["database"] == "ok"

    [(serving,)] = await admin_query(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db", db=database
    )
    assert isinstance(serving, int)
    assert serving > 0

    server.send_signal(signal.SIGTERM)
    code = await server.wait(EXIT_DEADLINE_SECONDS)

    # Backends leave pg_stat_activity a moment after their client disconnects.
    remaining = serving
    with anyio.move_on_after(5):
        while remaining:
            [(remaining,)] = await admin_query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db", db=database
            )
            await anyio.sleep(0.05)
    assert remaining == 0
    # A process that exits without closing its connections leaves them to the kernel, and
    # PostgreSQL counts each as "abandoned". Zero: the engine was disposed before the exit.
    [(abandoned,)] = await admin_query(
        "SELECT sessions_abandoned FROM pg_stat_database WHERE datname = :db", db=database
    )
    assert abandoned == 0
    assert_clean_log(server)
    assert code == 0, f"exit code {code}\n{server.log}"


# --- (2) SIGTERM with requests in flight: they finish --------------------------------------------


async def test_sigterm_lets_in_flight_requests_finish(
    start_server: StartServer, fresh_database: str
) -> None:
    # Sign-ups are slow-ish: production-grade Argon2, two hashes at a time per process.
    server = await start_server(fresh_database)
    finished_at: dict[int, float] = {}

    async with (
        server.client() as client,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as probe,
    ):

        async def sign_up(i: int) -> httpx.Response:
            response = await client.post(
                "/api/v1/users",
                json={"email": f"slow{i}@example.com", "password": PASSWORD, "name": "Slow"},
            )
            finished_at[i] = time.monotonic()
            return response

        requests = [asyncio.create_task(sign_up(i)) for i in range(6)]
        # SIGTERM only once the server is serving them (a request still in the accept queue is
        # not in flight: it is refused when the listening socket closes).
        with anyio.fail_after(20):
            while True:  # polling another process: there is no event to wait on
                if await in_flight(probe) >= 6 or any(r.done() for r in requests):
                    break
                await anyio.sleep(0.01)
        server.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        responses = await asyncio.gather(*requests, return_exceptions=True)

    code = await server.wait(EXIT_DEADLINE_SECONDS)
    assert [getattr(r, "status_code", r) for r in responses] == [201] * 6, server.log
    assert any(t > signalled_at for t in finished_at.values()), "none was in flight at SIGTERM"
    assert await count_users(fresh_database) == 6
    assert_clean_log(server)
    assert code == 0, f"exit code {code}\n{server.log}"


# --- (3) Ctrl-C ----------------------------------------------------------------------------------


async def test_sigint_stops_cleanly(start_server: StartServer, fresh_database: str) -> None:
    server = await start_server(fresh_database)
    async with server.client() as client:
        assert (await client.get("/health/ready")).status_code == 200

    server.send_signal(signal.SIGINT)
    code = await server.wait(EXIT_DEADLINE_SECONDS)

    assert_clean_log(server)
    assert code == 0, f"exit code {code}\n{server.log}"


# --- (4) start-up migrates a new database and seeds the first superuser ---------------------------


async def test_serve_migrates_a_new_sqlite_database_and_creates_the_superuser(
    start_server: StartServer, tmp_path: Path
) -> None:
    path = tmp_path / "brand-new.db"
    assert not await anyio.Path(path).exists()
    url = f"sqlite+aiosqlite:///{path}"
    server = await start_server(
        url, FIRST_SUPERUSER_EMAIL="Boss@Example.com", FIRST_SUPERUSER_PASSWORD=PASSWORD
    )

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert {"users", "refresh_tokens", "alembic_version"} <= tables

    async with server.client() as client:
        token = await client.post(
            "/api/v1/auth/token", data={"username": "boss@example.com", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        me = await client.get("/api/v1/users/me", headers=headers)
        assert me.json()["email"] == "boss@example.com"
        assert me.json()["is_superuser"] is True
        listed = await client.get("/api/v1/users", headers=headers)
        assert listed.status_code == 200
        assert [u["email"] for u in listed.json()["items"]] == ["boss@example.com"]
