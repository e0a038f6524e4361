"""Shared fixtures. The app under test is built as production builds it: `create_app(settings)`
with its lifespan running, reached through httpx over ASGI.

Databases: SQLite by default; PostgreSQL when TEST_DATABASE_URL is set (`make test-services`).
Each pytest-xdist worker gets its own database, migrated once; every test starts from empty
tables (they are emptied after each test, so concurrency tests can use real, separate
connections instead of one shared outer transaction).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from blockbuster import BlockBuster, blockbuster_ctx
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from app.core.settings import Settings
from app.main import create_app
from app.migrate import upgrade
from app.models import metadata

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
# Set by `make test-services` / CI: a missing service is a failure there, never a skip.
REQUIRE_SERVICES = os.environ.get("TEST_REQUIRE_SERVICES") == "1"
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")

PASSWORD = "correct horse battery"


def require_postgres() -> None:
    """Skip a PostgreSQL-only test, or fail it where services are required (CI)."""
    reason = "needs PostgreSQL: set TEST_DATABASE_URL=postgresql+asyncpg://..."
    if not ON_POSTGRES:
        if REQUIRE_SERVICES:
            pytest.fail(
                f"TEST_REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not PostgreSQL ({reason})"
            )
        pytest.skip(reason)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


async def _create_postgres_database(admin_url: str, name: str) -> str:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A migrated, empty database of this worker's own."""
    if ON_POSTGRES:
        name = f"test_{_worker()}_{uuid.uuid4().hex[:8]}"
        url = await _create_postgres_database(TEST_DATABASE_URL, name)
        await anyio.to_thread.run_sync(upgrade, url)
        yield url
        await _drop_postgres_database(TEST_DATABASE_URL, name)
    else:
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        await anyio.to_thread.run_sync(upgrade, url)
        yield url


@pytest.fixture(scope="session")
async def cleanup_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


def _redis_url_for_worker() -> str | None:
    if not TEST_REDIS_URL:
        return None
    return make_url_redis(TEST_REDIS_URL, _REDIS_DB["number"])


# This worker's Redis database, 1..15: claimed at session start by `_own_redis_database`.
_REDIS_DB = {"number": 1}
_GUARD_PREFIX = "fpp-tests-"


@pytest.fixture(scope="session", autouse=True)
def _own_redis_database() -> Iterator[None]:
    """Give this xdist worker a Redis database no other test run is using: tests flush their
    database after each test and the job runners read its stream, so two runs on one database
    (two `make test-services` on one machine) break each other. A worker holds a named
    connection on the database it uses; a database where another run's worker holds one is
    skipped, and of two workers that arrive together the later connection moves on."""
    if not TEST_REDIS_URL:
        yield
        return
    import redis

    worker = int(_worker().removeprefix("gw") or 0)
    name = f"{_GUARD_PREFIX}{os.getpid()}"
    for step in range(15):
        number = 1 + (worker + step) % 15
        guard = redis.Redis.from_url(
            make_url_redis(TEST_REDIS_URL, number), single_connection_client=True
        )
        guard.client_setname(name)
        mine = guard.client_id()
        taken = any(
            client["name"].startswith(_GUARD_PREFIX)
            and client["name"] != name
            and int(client["db"]) == number
            and int(client["id"]) < mine
            for client in guard.client_list()
        )
        if not taken:
            break
        guard.close()
    else:
        pytest.fail("every Redis database 1..15 is used by another test run", pytrace=False)
    _REDIS_DB["number"] = number
    yield
    guard.close()


def make_url_redis(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


@pytest.fixture(autouse=True)
async def _empty_tables(cleanup_engine: AsyncEngine) -> AsyncIterator[None]:
    yield
    async with cleanup_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    if TEST_REDIS_URL:
        from redis.asyncio import Redis

        redis = Redis.from_url(_redis_url_for_worker() or TEST_REDIS_URL)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()


@pytest.fixture(autouse=True)
def _no_blocking_calls() -> Any:
    """Fail any test in which a blocking call (file or socket I/O, time.sleep, ...) runs on the
    event loop's thread while the loop is running."""
    with blockbuster_ctx(excluded_modules=["asgi_lifespan"]) as bb:
        _allow_known_safe(bb)
        yield bb


# (function, file, caller): blocking calls that are harmless where they happen.
KNOWN_SAFE = [
    # Writing a log line to stderr.
    ("io.TextIOWrapper.write", "logging/__init__.py", "emit"),
    ("io.BufferedWriter.write", "logging/__init__.py", "emit"),
    # A string operation on the configured SQLite path, once per engine.
    ("os.path.abspath", "sqlalchemy/dialects/sqlite/pysqlite.py", "create_connect_args"),
    # asyncpg looks for ~/.pgpass and ~/.postgresql/* when it opens a connection (once per
    # pooled connection, not per request).
    ("*", "asyncpg/connect_utils.py", "_parse_connect_dsn_and_args"),
    # redis-py reads its own version from package metadata for each new pooled connection.
    ("*", "redis/utils.py", "get_lib_version"),
]


def _allow_known_safe(bb: BlockBuster) -> None:
    for function, filename, caller in KNOWN_SAFE:
        for name in bb.functions if function == "*" else [function]:
            if name in bb.functions:
                bb.functions[name].can_block_in(filename, caller)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


def pool_of(engine: AsyncEngine) -> AsyncAdaptedQueuePool:
    """The engine's pool, typed: every engine of the app is built on SQLAlchemy's stock
    `AsyncAdaptedQueuePool`."""
    pool = engine.pool
    assert isinstance(pool, AsyncAdaptedQueuePool)
    return pool


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": _redis_url_for_worker(),
        # Cheap Argon2 parameters: the suite hashes hundreds of passwords.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "login_failures_per_email_and_client": "5/minute",
        "login_failures_per_client": "1000/minute",
        # Many tests sign up more than the default 10 users a minute from one client.
        "signup_rate_limit": "1000/minute",
        "log_format": "json",
        # Correctness tests, not latency ones: on a loaded machine a burst of concurrent
        # requests may wait longer for SQLite's write lock or a database turn than production
        # defaults allow (the tests of those bounds set their own values).
        "sqlite_busy_timeout_ms": 30_000,
        "db_admission_timeout": 60,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    # Built outside the event loop, as a server builds it at import: construction does a few
    # blocking filesystem checks (static docs assets) that have no place on a running loop.
    return create_app(settings)


def lifespan_of(application: FastAPI) -> LifespanManager:
    """The app's lifespan, run as a server runs it. The lifespan does real work (database, job
    runner, OpenAPI warm-up): on a loaded machine it took longer than asgi-lifespan's 5 s
    default, so every test bounds start-up and shutdown at 30 s; a real hang still fails."""
    return LifespanManager(application, startup_timeout=30, shutdown_timeout=30)


@pytest.fixture
async def app(application: FastAPI) -> AsyncIterator[FastAPI]:
    # State lives on the application object itself (app.state), so tests get the FastAPI app,
    # running, rather than asgi-lifespan's wrapper.
    async with lifespan_of(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


SignUp = Callable[..., Awaitable[dict[str, Any]]]
Login = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def sign_up(client: AsyncClient) -> SignUp:
    """POST /users and return the created user's JSON."""

    async def _sign_up(
        email: str | None = None, password: str = PASSWORD, name: str = "Test User", **extra: Any
    ) -> dict[str, Any]:
        body = {"email": email or f"{uuid.uuid4().hex[:12]}@example.com", "password": password}
        body |= {"name": name, **extra}
        response = await client.post("/api/v1/users", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return _sign_up


@pytest.fixture
def login(client: AsyncClient) -> Login:
    """POST /auth/token and return `Authorization` headers for the access token."""

    async def _login(email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return _login


@pytest.fixture
async def user_headers(sign_up: SignUp, login: Login) -> dict[str, str]:
    user = await sign_up()
    return await login(user["email"])


@pytest.fixture
async def superuser_headers(app: FastAPI, login: Login) -> dict[str, str]:
    from app.users.schemas import UserCreate
    from app.users.service import create_user

    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    async with app.state.db.sessionmaker() as session:
        await create_user(
            session,
            UserCreate(email=email, password=PASSWORD, name="Admin"),
            app.state.password_hasher,
            is_superuser=True,
        )
    return await login(email)


def pytest_report_header() -> list[str]:
    database = "PostgreSQL" if ON_POSTGRES else "SQLite"
    return [f"database: {database}; redis: {'yes' if TEST_REDIS_URL else 'no (in-process)'}"]


ROOT = Path(__file__).resolve().parent.parent
