"""Pattern 1, lifecycle: nothing connects at import or construction; the lifespan makes the engine,
the HTTP client, the rate limiter and the password hasher, and takes them all down again at
shutdown, the engine last, leaving no database connection behind."""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from app.core.db import Database
from app.core.ratelimit import RateLimiter
from app.core.security import PasswordHasher
from app.core.settings import Settings
from app.main import create_app
from app.users.models import User
from tests.conftest import (
    ON_POSTGRES,
    PASSWORD,
    ROOT,
    TEST_DATABASE_URL,
    lifespan_of,
    make_settings,
    require_postgres,
)


async def pg_connections(database: str) -> int:
    """Backends connected to `database`, counted from the admin database (so not counted)."""
    engine = create_async_engine(TEST_DATABASE_URL, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": database},
                )
                or 0
            )
    finally:
        await engine.dispose()


async def wait_for_pg_connections(database: str, expected: int, seconds: float = 5) -> int:
    """A closed connection's backend leaves pg_stat_activity a moment later: poll briefly."""
    count = await pg_connections(database)
    with anyio.move_on_after(seconds):
        while count != expected:
            await anyio.sleep(0.05)
            count = await pg_connections(database)
    return count


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    """An app built from `settings` with its lifespan running. Shuts down even when the body
    fails (LifespanManager alone skips shutdown then, leaving an undisposed engine)."""
    application = await anyio.to_thread.run_sync(create_app, settings)
    error: BaseException | None = None
    async with (
        lifespan_of(application) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        try:
            yield application, client
        except BaseException as exc:
            error = exc
    if error is not None:
        raise error


# --- nothing at import, nothing at construction -----------------------------------------

CONNECTED_TYPES = (
    AsyncEngine,
    Engine,
    Database,
    AsyncSession,
    async_sessionmaker,
    httpx.AsyncClient,
)


def test_no_engine_in_module_globals() -> None:
    import app.main  # noqa: F401  (the import under test)

    found = [
        f"{name}.{attribute}: {type(value).__name__}"
        for name, module in list(sys.modules.items())
        if name == "app" or name.startswith("app.")
        for attribute, value in list(vars(module).items())
        if isinstance(value, CONNECTED_TYPES)
    ]
    assert found == []


async def test_fresh_interpreter_import_and_create_app_make_no_engine(tmp_path: Any) -> None:
    """In a fresh interpreter (nothing else has made an engine there): after `import app.main`
    and `create_app(settings)`, no engine exists anywhere in memory and no file was opened."""
    db_file = tmp_path / "never-created.db"
    code = f"""
import gc
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
import app.main
from app.core.settings import Settings
application = app.main.create_app(Settings(_env_file=None, environment="test",
                                           database_url="sqlite+aiosqlite:///{db_file}"))
engines = [o for o in gc.get_objects() if isinstance(o, (AsyncEngine, Engine))]
print(len(engines), hasattr(application.state, "db"))
"""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    with anyio.fail_after(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().split() == ["0", "False"]
    assert not await anyio.Path(db_file).exists()


def test_create_app_opens_nothing(application: FastAPI) -> None:
    for name in ("db", "http", "redis", "rate_limiter", "password_hasher"):
        assert not hasattr(application.state, name), name


def test_no_startup_or_shutdown_event_handlers(application: FastAPI) -> None:
    assert application.router.on_startup == []
    assert application.router.on_shutdown == []


# --- what the lifespan makes, and how it takes it down -------------------------------------


async def test_lifespan_makes_the_resources(application: FastAPI, settings: Settings) -> None:
    async with lifespan_of(application):
        state = application.state
        assert isinstance(state.db, Database)
        assert isinstance(state.db.engine, AsyncEngine)
        assert isinstance(state.http, httpx.AsyncClient)
        assert not state.http.is_closed
        assert isinstance(state.rate_limiter, RateLimiter)
        assert isinstance(state.password_hasher, PasswordHasher)
        assert (state.redis is None) is (settings.redis_url is None)
        assert state.settings is settings


async def test_shutdown_closes_every_connection(application: FastAPI, database_url: str) -> None:
    database = make_url(database_url).database
    before = await pg_connections(database) if ON_POSTGRES else 0
    opened: list[object] = []
    closed: list[object] = []

    manager = lifespan_of(application)
    async with manager:
        engine: AsyncEngine = application.state.db.engine
        pool = engine.pool
        event.listen(engine.sync_engine, "connect", lambda conn, _: opened.append(conn))
        event.listen(pool, "close", lambda conn, _: closed.append(conn))
        async with AsyncClient(
            transport=ASGITransport(app=manager.app), base_url="http://test"
        ) as client:
            # Several at once, so the pool holds more than one connection.
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/users",
                        json={
                            "email": f"{uuid.uuid4().hex[:10]}@example.com",
                            "password": PASSWORD,
                            "name": "Shut Down",
                        },
                    )
                    for _ in range(4)
                ),
                client.get("/health/ready"),
            )
            assert [r.status_code for r in responses] == [201, 201, 201, 201, 200]
        if ON_POSTGRES:
            assert await pg_connections(database) > before
        http: httpx.AsyncClient = application.state.http

    assert opened, "the requests used no database connection"
    assert pool.checkedout() == 0
    # Every connection the engine opened was closed (not left to the garbage collector). The
    # job runner may have opened some before the listener was attached: `closed` has those too.
    closed_ids = {id(conn) for conn in closed}
    assert all(id(conn) in closed_ids for conn in opened)
    # AsyncEngine.dispose() replaces the pool it emptied.
    assert engine.pool is not pool
    assert http.is_closed
    if ON_POSTGRES:
        assert await wait_for_pg_connections(database, before) == before


async def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(tmp_path: Any) -> None:
    # Runs on every backend: a SQLite file of its own, whatever TEST_DATABASE_URL says.
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}", sqlite_busy_timeout_ms=1234
    )
    async with running(settings) as (app, _):
        engine: AsyncEngine = app.state.db.engine
        assert engine.dialect.driver == "aiosqlite"
        # Three connections held at once, so three distinct pooled connections are checked:
        # every connection is set up, not just the first.
        async with AsyncExitStack() as stack:
            seen = set()
            for _ in range(3):
                conn = await stack.enter_async_context(engine.connect())
                seen.add(id(await conn.get_raw_connection()))
                journal = await conn.exec_driver_sql("PRAGMA journal_mode")
                assert journal.scalar() == "wal"
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 1234
                assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL
                # End the (BEGIN IMMEDIATE) transaction so the next connection can begin one.
                await conn.rollback()
            assert len(seen) == 3


async def test_postgres_engine_uses_asyncpg(app: Any, application: FastAPI) -> None:
    require_postgres()
    engine: AsyncEngine = application.state.db.engine
    assert engine.dialect.name == "postgresql"
    assert engine.dialect.driver == "asyncpg"
    async with engine.connect() as conn:
        assert str(await conn.scalar(text("SELECT version()"))).startswith("PostgreSQL")


async def test_engine_driver_matches_the_backend(app: Any, application: FastAPI) -> None:
    engine: AsyncEngine = application.state.db.engine
    assert engine.dialect.driver == ("asyncpg" if ON_POSTGRES else "aiosqlite")


# --- start-up work: the first superuser ----------------------------------------------------


async def _superusers(database_url: str, email: str) -> list[tuple[bool, str]]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(User.is_superuser, User.hashed_password).where(User.email == email)
            )
            return [(bool(row[0]), str(row[1])) for row in rows]
    finally:
        await engine.dispose()


async def test_first_superuser_is_created_once(database_url: str) -> None:
    settings = make_settings(
        database_url,
        first_superuser_email="Root@Example.com",
        first_superuser_password=PASSWORD,
    )
    async with running(settings) as (_, client):
        response = await client.post(
            "/api/v1/auth/token", data={"username": "root@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        me = await client.get("/api/v1/users/me", headers=headers)
        assert me.json()["is_superuser"] is True
        # A superuser-only endpoint answers.
        assert (await client.get("/api/v1/users", headers=headers)).status_code == 200
    first = await _superusers(database_url, "root@example.com")
    assert len(first) == 1
    assert first[0][0] is True

    # A restart finds it and leaves it alone (same row, same hash).
    async with running(settings):
        pass
    assert await _superusers(database_url, "root@example.com") == first


async def test_first_superuser_two_processes_starting_at_once(database_url: str) -> None:
    """Two workers starting together race for the same email: one row, both start."""
    settings = make_settings(
        database_url,
        first_superuser_email="twice@example.com",
        first_superuser_password=PASSWORD,
    )
    apps = [await anyio.to_thread.run_sync(create_app, settings) for _ in range(2)]
    managers = [lifespan_of(app) for app in apps]
    with anyio.fail_after(30):
        await asyncio.gather(*(manager.__aenter__() for manager in managers))
        await asyncio.gather(*(manager.__aexit__(None, None, None) for manager in managers))
    rows = await _superusers(database_url, "twice@example.com")
    assert len(rows) == 1
    assert rows[0][0] is True

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(User)) == 1
    finally:
        await engine.dispose()


async def test_startup_objects_are_frozen_only_in_a_serving_process(database_url: str) -> None:
    """The app uvicorn serves (`app.main:app`, built with `served=True`) moves its start-up
    objects out of the garbage collector's scans (full collections re-scanning them cost 10 %
    of the CPU under load); an app built in-process, whatever its environment, does not: a
    test process builds hundreds of apps, and collecting its heap took seconds when busy."""
    frozen_before = gc.get_freeze_count()
    development = make_settings(database_url, environment="development", secret_key="k" * 48)
    try:
        # Built off the loop, as a server builds it (construction checks the docs assets).
        built = await anyio.to_thread.run_sync(create_app, development)
        async with LifespanManager(built, startup_timeout=30):
            assert gc.get_freeze_count() == frozen_before
        served = await anyio.to_thread.run_sync(
            functools.partial(create_app, development, served=True)
        )
        async with LifespanManager(served, startup_timeout=30):
            assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()
