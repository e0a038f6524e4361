"""The real-server tier: `python -m app serve` in its own process, spoken to over a socket.

Everything here is async and non-blocking (the blocking-call detector is on): the process is
started with asyncio, its output is read by a task, HTTP goes through httpx.AsyncClient. Every
process a test starts is killed (by pid) in teardown, whatever the test did.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.settings import Settings
from tests.conftest import (
    ON_POSTGRES,
    ROOT,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    _redis_url_for_worker,
)

GRACEFUL_SHUTDOWN_SECONDS = 5
# How long a server may take to import, migrate and start answering (slow CI machines).
STARTUP_DEADLINE_SECONDS = 60
SECRET_KEY = "e2e-secret-" + "k" * 37  # 48 characters
assert len(SECRET_KEY) == 48

# The server is started as if from a terminal: SIGINT at its default (KeyboardInterrupt), even
# when pytest itself runs in the background with SIGINT ignored (an ignored signal would be
# inherited and change what Ctrl-C does). The launcher then becomes `python -m app serve`
# (exec keeps the pid).
_LAUNCHER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'app', *sys.argv[1:]])"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: asyncio.subprocess.Process
    base_url: str
    database_url: str
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def send_signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    async def wait(self, seconds: float) -> int:
        """The exit code, waiting at most `seconds` for the process to end."""
        try:
            with anyio.fail_after(seconds):
                code = await self.process.wait()
        except TimeoutError:
            pytest.fail(f"server {self.pid} still running after {seconds} s\n{self.log}")
        if self.reader is not None:
            with anyio.move_on_after(5):
                await self.reader  # the rest of its output
        return code

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)


async def _read_output(server: Server) -> None:
    assert server.process.stdout is not None
    async for raw in server.process.stdout:
        server.lines.append(raw.decode(errors="replace").rstrip("\n"))


def server_environment(database_url: str, **overrides: str) -> dict[str, str]:
    # Nothing of the test run's own configuration leaks into the server: any variable named
    # like a setting is dropped, then the server's settings are given explicitly.
    setting_names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in setting_names}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        ENVIRONMENT="production",
        ARGON2_TIME_COST="2",
        ARGON2_MEMORY_KIB="19456",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        GRACEFUL_SHUTDOWN_SECONDS=str(GRACEFUL_SHUTDOWN_SECONDS),
        # Production refuses the sandbox gateway; no e2e test charges a card.
        PAYMENT_GATEWAY="http",
        PAYMENT_GATEWAY_URL="https://gateway.invalid/v1",
    )
    if TEST_REDIS_URL:
        # This xdist worker's own Redis database, as for the in-process tests (and emptied after
        # each test with them): servers of tests on other workers never read each other's jobs.
        env["REDIS_URL"] = _redis_url_for_worker() or TEST_REDIS_URL
    env.update(overrides)
    return env


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """`await start_server(database_url, **ENV)` starts `python -m app serve --port <free>` and
    returns once /health/live answers."""
    started: list[Server] = []

    async def start(database_url: str, **env: str) -> Server:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _LAUNCHER,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=ROOT,
            env=server_environment(database_url, VAR_DIR=str(tmp_path / "var"), **env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        server = Server(process, f"http://127.0.0.1:{port}", database_url)
        server.reader = asyncio.create_task(_read_output(server))
        started.append(server)
        await _wait_until_live(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            if server.process.returncode is None:
                os.kill(server.pid, signal.SIGKILL)
                with anyio.move_on_after(10):
                    await server.process.wait()
            if server.reader is not None:
                server.reader.cancel()
                with anyio.move_on_after(5):
                    await asyncio.gather(server.reader, return_exceptions=True)


async def _wait_until_live(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as client:
        while True:
            if server.process.returncode is not None:
                pytest.fail(
                    f"server exited with {server.process.returncode} at start\n{server.log}"
                )
            try:
                if (await client.get("/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not live after {STARTUP_DEADLINE_SECONDS} s\n{server.log}")
            await anyio.sleep(0.1)


# --- databases ------------------------------------------------------------------------------


async def admin_query(sql: str, **params: object) -> list[tuple[object, ...]]:
    """Run SQL on PostgreSQL's admin database (so this connection is not one to the test DB)."""
    return await query_on(TEST_DATABASE_URL, sql, **params)


async def query_on(url: str, sql: str, /, **params: object) -> list[tuple[object, ...]]:
    """Run SQL on the database at `url`, in autocommit, on a connection of its own."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.fixture
async def fresh_database(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the backend under test; `serve` migrates it when it starts."""
    if not ON_POSTGRES:
        yield f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
        return
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    await admin_query(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
