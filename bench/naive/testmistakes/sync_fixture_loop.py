"""Mistake: a sync fixture sets up an async resource with its own event loop
(`asyncio.run`), then an async test uses it on pytest-asyncio's loop."""

from __future__ import annotations

import asyncio
import os

import asyncpg  # type: ignore[import-untyped]
import pytest

DSN = os.environ["BENCH_TEST_DSN"]


@pytest.fixture
def connection() -> asyncpg.Connection:
    return asyncio.run(asyncpg.connect(DSN))  # made on a loop that is closed right after


@pytest.mark.asyncio
async def test_select_one(connection: asyncpg.Connection) -> None:
    assert await connection.fetchval("SELECT 1") == 1
