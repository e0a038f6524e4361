"""`FairAsyncQueuePool` keeps overflow connections while they are needed (no churn: the stock
pool closes one on every return to a full queue and reopens it for the next burst), and
shrinks back to `pool_size` once overflow has gone unused for `overflow_idle_seconds`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import create_engine
from tests.conftest import make_settings, pool_of

POOL_SIZE = 2
MAX_OVERFLOW = 3


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    settings = make_settings(
        database_url, db_pool_size=POOL_SIZE, db_max_overflow=MAX_OVERFLOW, db_pool_timeout=10
    )
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


def count_connects(engine: AsyncEngine) -> list[object]:
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    return opened


async def burst(engine: AsyncEngine, size: int) -> None:
    """`size` connections checked out at once, then all returned."""
    held = [await engine.connect() for _ in range(size)]
    for conn in held:
        await conn.close()


async def test_bursts_reuse_overflow_connections(engine: AsyncEngine) -> None:
    opened = count_connects(engine)
    capacity = POOL_SIZE + MAX_OVERFLOW

    for _ in range(5):
        await burst(engine, capacity)

    # The stock QueuePool opens MAX_OVERFLOW new connections for every burst after the first.
    assert len(opened) == capacity
    pool = pool_of(engine)
    assert pool.checkedout() == 0
    assert pool.checkedin() == capacity
    assert pool.size() == POOL_SIZE
    assert pool.overflow() == MAX_OVERFLOW


async def test_shrinks_to_pool_size_once_overflow_goes_unused(engine: AsyncEngine) -> None:
    pool = pool_of(engine)
    pool.overflow_idle_seconds = 0.2
    await burst(engine, POOL_SIZE + MAX_OVERFLOW)
    assert pool.checkedin() == POOL_SIZE + MAX_OVERFLOW

    await asyncio.sleep(0.3)
    # Light traffic: one connection at a time. Each return closes one connection beyond
    # pool_size, until pool_size are left.
    for _ in range(MAX_OVERFLOW + 2):
        await burst(engine, 1)

    assert pool.checkedin() == POOL_SIZE
    assert pool.overflow() == 0
    assert pool.checkedout() == 0


async def test_overflow_stays_while_in_use(engine: AsyncEngine) -> None:
    pool = pool_of(engine)
    pool.overflow_idle_seconds = 0.2
    opened = count_connects(engine)

    # Longer than the idle window in all, but overflow is in use every few milliseconds.
    for _ in range(10):
        await burst(engine, POOL_SIZE + 1)
        await asyncio.sleep(0.05)

    assert len(opened) == POOL_SIZE + 1
    assert pool.checkedin() == POOL_SIZE + 1


async def test_waiters_are_served_first_come_first_served(engine: AsyncEngine) -> None:
    capacity = POOL_SIZE + MAX_OVERFLOW
    held = [await engine.connect() for _ in range(capacity)]
    served: list[int] = []

    async def wait_for_a_connection(number: int) -> None:
        async with engine.connect():
            served.append(number)

    waiters = []
    for number in range(6):
        waiters.append(asyncio.create_task(wait_for_a_connection(number)))
        await asyncio.sleep(0.01)  # queued in this order
    for conn in held:
        await conn.close()
    await asyncio.gather(*waiters)

    assert served == list(range(6))
    assert pool_of(engine).checkedout() == 0
