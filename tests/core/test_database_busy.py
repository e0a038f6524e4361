"""SQLite has one write lock. A request that waited SQLITE_BUSY_TIMEOUT_MS for it gets a 503
`database_busy` with Retry-After (the same answer as an exhausted PostgreSQL pool), never a 500,
and writes nothing; once the lock is free the same request succeeds."""

from __future__ import annotations

import uuid

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from tests.conftest import ON_POSTGRES, PASSWORD, make_settings

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's single write lock only")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, sqlite_busy_timeout_ms=100)


async def test_a_locked_sqlite_database_is_a_503_and_writes_nothing(
    client: AsyncClient, cleanup_engine: AsyncEngine
) -> None:
    body = {"email": f"{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD, "name": "B"}
    async with cleanup_engine.connect() as holder:
        await holder.exec_driver_sql("BEGIN IMMEDIATE")  # another process holds the write lock
        response = await client.post("/api/v1/users", json=body)
        await holder.exec_driver_sql("ROLLBACK")

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_busy"
    assert response.headers["retry-after"] == "1"

    retry = await client.post("/api/v1/users", json=body)
    assert retry.status_code == 201, retry.text
