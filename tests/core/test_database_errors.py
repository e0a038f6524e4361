"""A database that cannot be reached answers every request with a 503 `database_unavailable`
and `Retry-After` (never a 500), logs one line per failure and a traceback at most once a minute
per cause; and no database error is logged with its bound parameters outside development.

Reproduced: with the database down every request was a 500 `internal_error` (a refused
connection is an `OSError`, not a `DBAPIError`) with a full traceback each: 744 tracebacks and
7.6 MiB of log in 15 s. Emails and message bodies were logged with failing statements.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

import anyio
from asgi_lifespan import LifespanManager
from fastapi import Body, FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from app.core.db import SessionDep
from app.core.security import create_access_token
from app.core.settings import Settings
from app.main import create_app
from app.users.models import User
from tests.conftest import PASSWORD, make_settings, require_postgres

# --- helpers -----------------------------------------------------------------------------------


@asynccontextmanager
async def running(application: FastAPI) -> AsyncIterator[AsyncClient]:
    async with (
        LifespanManager(application, startup_timeout=30, shutdown_timeout=30) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


class LogLines(logging.Handler):
    """Every log line the app writes, rendered exactly as its handler renders it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def of_requests(self) -> list[str]:
        """The lines logged while serving a request (they carry its id); not those of the
        background work the lifespan started."""
        return [line for line in self.lines if '"request_id"' in line]

    def events(self, name: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.of_requests()]
        return [entry for entry in parsed if entry.get("event") == name]


@contextmanager
def captured_logs() -> Iterator[LogLines]:
    """Call with the lifespan running: it configures the root handler whose format we copy."""
    root = logging.getLogger()
    capture = LogLines()
    capture.setFormatter(root.handlers[0].formatter)
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)


def closed_port() -> int:
    """A local port nothing listens on (connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TcpProxy:
    """A TCP relay to the real database that can be cut, as a server that goes away: its
    connections are reset and new ones refused until it comes back on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.transport.abort()
        await self.server.wait_closed()
        self.links.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def assert_unavailable(client: AsyncClient, headers: dict[str, str]) -> int:
    """Sends requests of each kind; every one must be a 503 database_unavailable."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    responses = [
        *[await client.get("/api/v1/users/me", headers=headers) for _ in range(10)],
        *[
            await client.post(
                "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "Down"}
            )
            for _ in range(5)
        ],
        *[
            await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
            for _ in range(5)
        ],
    ]
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert response.json()["code"] == "database_unavailable"
    return len(responses)


def assert_quiet(logs: LogLines, failures: int) -> None:
    """One line per failed request, a traceback only once per cause, never a 500."""
    unavailable = logs.events("database_unavailable")
    assert len(unavailable) == failures
    causes = {entry["cause"] for entry in unavailable}
    lines = logs.of_requests()
    with_traceback = [line for line in lines if "Traceback (most recent call last)" in line]
    assert 1 <= len(with_traceback) <= len(causes), causes
    assert logs.events("unhandled_exception") == []
    # The reproduction logged ~10 KiB per failed request.
    assert sum(map(len, lines)) < failures * 1024 + len(causes) * 16 * 1024


# --- the database unreachable ------------------------------------------------------------------


async def test_a_database_nobody_listens_for_is_a_503_per_request_and_quiet_logs(
    database_url: str,
) -> None:
    refused = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/gone"
    settings = make_settings(refused)
    application = await anyio.to_thread.run_sync(create_app, settings)
    token = create_access_token(1, secret=settings.secret, ttl_seconds=60)
    async with running(application) as client:
        with captured_logs() as logs:
            failures = await assert_unavailable(client, {"Authorization": f"Bearer {token}"})

    assert_quiet(logs, failures)
    assert {entry["cause"] for entry in logs.events("database_unavailable")} == {
        "ConnectionRefusedError"
    }


async def test_a_postgres_server_that_goes_away_is_a_503_then_recovers(
    database_url: str,
) -> None:
    require_postgres()
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(through_proxy.render_as_string(hide_password=False))
    application = await anyio.to_thread.run_sync(create_app, settings)
    try:
        async with running(application) as client:
            email = f"{uuid.uuid4().hex[:10]}@example.com"
            created = await client.post(
                "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "Gone"}
            )
            assert created.status_code == 201, created.text
            token = await client.post(
                "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200

            await proxy.cut()  # pooled connections reset, new ones refused
            with captured_logs() as logs:
                failures = await assert_unavailable(client, headers)
            assert_quiet(logs, failures)

            await proxy.start()  # back on the same port
            with anyio.fail_after(30):
                again = await client.get("/api/v1/users/me", headers=headers)
            assert again.status_code == 200
            assert again.json()["email"] == email
    finally:
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.cut()


# --- no bound parameters in the log outside development ----------------------------------------


def app_with_a_duplicate_insert(settings: Settings) -> FastAPI:
    """The app, plus a route whose INSERT violates the unique email (an IntegrityError nothing
    handles: a 500 whose traceback shows the failing statement)."""
    application = create_app(settings)

    @application.post("/test/duplicate")
    async def duplicate(email: Annotated[str, Body(embed=True)], session: SessionDep) -> None:
        row = {"email": email, "hashed_password": "x", "name": "Secret Name"}
        await session.execute(insert(User).values(**row))
        await session.execute(insert(User).values(**row))

    return application


async def logged_integrity_error(settings: Settings) -> str:
    application = await anyio.to_thread.run_sync(app_with_a_duplicate_insert, settings)
    email = f"private-{uuid.uuid4().hex[:8]}@example.com"
    async with running(application) as client:
        with captured_logs() as logs:
            response = await client.post("/test/duplicate", json={"email": email})
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    log = "\n".join(logs.lines)
    assert "IntegrityError" in log
    return log.replace(email, "<THE EMAIL>")


async def test_database_errors_are_logged_without_their_parameters(database_url: str) -> None:
    log = await logged_integrity_error(make_settings(database_url))

    assert "<THE EMAIL>" not in log
    assert "Secret Name" not in log
    assert "SQL parameters hidden" in log


async def test_development_logs_the_parameters(database_url: str) -> None:
    # A key of its own: development would otherwise read or write one under VAR_DIR.
    settings = make_settings(database_url, environment="development", secret_key="d" * 48)

    log = await logged_integrity_error(settings)

    assert "<THE EMAIL>" in log
