"""`HotRead`: the current-user read runs on the driver itself (asyncpg) and gives what Core gives;
every failure there ends as on any other path: a dead connection is replaced, a database error
is a `DBAPIError`, a cancelled read hands back its connection, and the pool is left clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import UTCDateTime, create_engine
from app.users.hot_read import HotRead
from app.users.models import User
from tests.conftest import make_settings, pool_of, require_postgres

USERS = User.__table__
USER_BY_ID = HotRead(select(USERS).where(USERS.c.id == bindparam("user_id")))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(database_url, db_pool_size=3, db_max_overflow=2))
    try:
        yield engine
    finally:
        await engine.dispose()


async def add_user(engine: AsyncEngine, email: str, **values: Any) -> int:
    row = {"email": email, "hashed_password": "x", "name": "Hot", "age": None, **values}
    async with engine.begin() as conn:
        user_id = await conn.scalar(insert(USERS).values(**row).returning(USERS.c.id))
    assert user_id is not None
    return user_id


async def through_core(engine: AsyncEngine, user_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(USERS).where(USERS.c.id == user_id))).one()
    return dict(row._mapping)


async def fill_pool_then_kill_it(engine: AsyncEngine, admin: AsyncEngine, size: int) -> int:
    """Opens `size` pooled connections, returns them idle, then terminates their server side,
    as a database restart does."""
    held = [await engine.connect() for _ in range(size)]
    pids = [await conn.scalar(text("SELECT pg_backend_pid()")) for conn in held]
    for conn in held:
        await conn.close()
    async with admin.connect() as conn:
        killed = await conn.scalar(
            text(
                "SELECT count(*) FROM unnest(CAST(:pids AS int[])) AS pid "
                "WHERE pg_terminate_backend(pid)"
            ),
            {"pids": pids},
        )
    return int(killed or 0)


async def test_gives_the_row_core_gives(engine: AsyncEngine) -> None:
    user_id = await add_user(engine, "hot@example.com", age=41, balance_minor=12_345)

    row = await USER_BY_ID.one_or_none(engine, user_id=user_id)

    assert row == await through_core(engine, user_id)
    assert row is not None
    # Aware UTC datetimes on both drivers, as UTCDateTime gives them through Core.
    assert row["created_at"].utcoffset().total_seconds() == 0
    assert isinstance(USERS.c.created_at.type, UTCDateTime)
    assert pool_of(engine).checkedout() == 0


async def test_missing_row_is_none(engine: AsyncEngine) -> None:
    assert await USER_BY_ID.one_or_none(engine, user_id=2**62) is None
    assert pool_of(engine).checkedout() == 0


async def test_every_pooled_connection_dead_still_reads(
    engine: AsyncEngine, cleanup_engine: AsyncEngine
) -> None:
    require_postgres()
    user_id = await add_user(engine, "restart@example.com")
    assert await fill_pool_then_kill_it(engine, cleanup_engine, 3) == 3

    row = await USER_BY_ID.one_or_none(engine, user_id=user_id)

    assert row is not None
    assert row["email"] == "restart@example.com"
    assert pool_of(engine).checkedout() == 0


async def test_a_database_error_is_a_dbapi_error_and_the_pool_stays_clean(
    engine: AsyncEngine,
) -> None:
    require_postgres()
    # Fails on the server (division by zero) on the driver path and again through Core.
    failing = HotRead(select(func.div(bindparam("n"), 0).label("x")))

    invalidated: list[BaseException | None] = []
    event.listen(engine.sync_engine, "invalidate", lambda _c, _r, exc: invalidated.append(exc))

    with pytest.raises(DBAPIError, match="division by zero"):
        await failing.one_or_none(engine, n=1)

    # It failed on the driver first (that connection discarded), then through Core.
    assert [type(exc).__name__ for exc in invalidated] == ["DivisionByZeroError"]

    assert pool_of(engine).checkedout() == 0
    user_id = await add_user(engine, "after-error@example.com")
    assert await USER_BY_ID.one_or_none(engine, user_id=user_id) is not None


async def test_a_cancelled_read_hands_its_connection_back(engine: AsyncEngine) -> None:
    require_postgres()
    slow = HotRead(select(func.pg_sleep(bindparam("seconds")).label("slept")))
    task = asyncio.create_task(slow.one_or_none(engine, seconds=5))
    await asyncio.sleep(0.3)  # the query is on the server now

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert pool_of(engine).checkedout() == 0
    user_id = await add_user(engine, "after-cancel@example.com")
    assert await USER_BY_ID.one_or_none(engine, user_id=user_id) is not None
