"""Mistake: an `async def` fixture declared with plain `@pytest.fixture` (strict mode): the
test receives the coroutine, not the connection."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

DSN = os.environ["BENCH_TEST_DSN"]


@pytest.fixture
async def connection() -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(DSN)
    yield connection
    await connection.close()


@pytest.mark.asyncio
async def test_select_one(connection: asyncpg.Connection) -> None:
    assert await connection.fetchval("SELECT 1") == 1
