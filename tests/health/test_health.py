"""Liveness and readiness: readiness names the dependency that is down and answers quickly even
when that dependency hangs; liveness does not depend on anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

import app.health.router as health_router
from app.main import create_app
from tests.conftest import TEST_REDIS_URL, lifespan_of, make_settings

UNREACHABLE_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/nope"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@asynccontextmanager
async def running(application: FastAPI) -> AsyncIterator[AsyncClient]:
    async with lifespan_of(application) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A real TCP server on loopback that accepts connections and never answers: a dependency
    that hangs rather than refuses."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # until the client gives up and closes

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_live_is_ok(client: AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_ok_with_every_check_named(client: AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    expected = {"database": "ok"} | ({"redis": "ok"} if TEST_REDIS_URL else {})
    assert response.json() == {"status": "ok", "checks": expected}
    assert "retry-after" not in response.headers


async def test_health_needs_no_credentials_and_sets_no_cookies(client: AsyncClient) -> None:
    for path in ("/health/live", "/health/ready"):
        response = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 200
        assert "set-cookie" not in response.headers


@pytest.fixture
def unreachable_database_application() -> FastAPI:
    # The lifespan opens no connection at start-up, so the app starts without its database.
    return create_app(make_settings(database_url=UNREACHABLE_DATABASE))


async def test_ready_is_503_naming_an_unreachable_database(
    unreachable_database_application: FastAPI,
) -> None:
    async with running(unreachable_database_application) as http:
        response = await http.get("/health/ready")
        live = await http.get("/health/live")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error")
    assert int(response.headers["retry-after"]) > 0
    # The reason is a class name, not a connection string.
    assert "127.0.0.1" not in response.text
    assert "nope" not in response.text
    # Liveness does not follow the database: restarting the process would not bring it back.
    assert live.status_code == 200


@pytest.fixture
def unreachable_redis_application(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url, redis_url=UNREACHABLE_REDIS))


async def test_ready_is_503_naming_an_unreachable_redis(
    unreachable_redis_application: FastAPI,
) -> None:
    async with running(unreachable_redis_application) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert int(response.headers["retry-after"]) > 0


async def test_ready_answers_when_redis_hangs(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A probe that waits as long as the dependency does gets the pod killed by the orchestrator's
    # own probe timeout; the check gives up after CHECK_TIMEOUT_SECONDS (shortened here).
    monkeypatch.setattr(health_router, "CHECK_TIMEOUT_SECONDS", 0.3)
    async with silent_server() as port:
        application = await asyncio.to_thread(
            create_app, make_settings(database_url, redis_url=f"redis://127.0.0.1:{port}/0")
        )
        async with running(application) as http:
            response = await http.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "error: TimeoutError"}


async def test_ready_answers_when_the_database_hangs(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_router, "CHECK_TIMEOUT_SECONDS", 0.3)
    async with silent_server() as port:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nope"
        application = await asyncio.to_thread(create_app, make_settings(database_url=url))
        async with running(application) as http:
            response = await http.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: TimeoutError"
