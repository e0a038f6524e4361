"""Migrations: one linear history that builds exactly the tables the models describe, on SQLite
and on PostgreSQL, and that can be taken down and built again. Alembic is blocking (it runs its
own event loop), so it runs in a worker thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from blockbuster import BlockBuster
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.migrate import alembic_config, downgrade, upgrade
from app.models import metadata
from tests.conftest import ON_POSTGRES, REQUIRE_SERVICES, TEST_DATABASE_URL

APP_TABLES = {table.name for table in metadata.sorted_tables}


def _alembic_in_worker_thread(command: Callable[..., None], *args: str) -> None:
    assert threading.current_thread() is not threading.main_thread()
    command(*args)


async def alembic(command: Callable[..., None], *args: str) -> None:
    """Alembic is blocking and runs the migrations on an event loop of its own (env.py calls
    asyncio.run): off the test's loop, in a worker thread."""
    await anyio.to_thread.run_sync(_alembic_in_worker_thread, command, *args)


@pytest.fixture(autouse=True)
def _alembic_may_block(_no_blocking_calls: BlockBuster) -> None:
    # Inside its private loop (in the worker thread above) Alembic reads its revision files.
    # Blocking that loop stalls nobody; the calls run inside a greenlet, so they are recognised
    # by Alembic's own frame, and allowed in this module only.
    for function in _no_blocking_calls.functions.values():
        function.can_block_in("alembic/runtime/migration.py", "run_migrations")


async def _admin(sql: str) -> None:
    engine = create_async_engine(
        TEST_DATABASE_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new, empty database of the given backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    if not ON_POSTGRES:
        reason = "needs PostgreSQL: set TEST_DATABASE_URL=postgresql+asyncpg://..."
        if REQUIRE_SERVICES:
            pytest.fail(
                f"TEST_REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not PostgreSQL ({reason})"
            )
        pytest.skip(reason)
    name = f"test_migrations_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1
    return heads[0]


async def test_upgrade_head_matches_the_models(empty_database: str) -> None:
    assert await _inspect(empty_database, _tables) == set()

    await alembic(upgrade, empty_database)

    assert await _inspect(empty_database, _tables) == APP_TABLES | {"alembic_version"}
    assert await _inspect(empty_database, _current_revision) == await anyio.to_thread.run_sync(
        _head
    )
    # What autogenerate would write next: nothing. A model change without a migration fails here.
    assert await _inspect(empty_database, _differences) == []


async def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    await alembic(upgrade, empty_database)
    # Upgrading an up-to-date database is a no-op, not an error (`serve` does it at each start).
    await alembic(upgrade, empty_database)

    await alembic(downgrade, empty_database, "base")
    assert await _inspect(empty_database, _tables) == {"alembic_version"}
    assert await _inspect(empty_database, _current_revision) is None

    await alembic(upgrade, empty_database)
    assert await _inspect(empty_database, _tables) == APP_TABLES | {"alembic_version"}
    assert await _inspect(empty_database, _differences) == []


def test_one_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()
    assert len(script.get_bases()) == 1, script.get_bases()
    revisions = list(script.walk_revisions())
    # No merge points, no branches: each revision has at most one parent.
    assert all(not isinstance(r.down_revision, tuple | list) for r in revisions)
    assert revisions[-1].down_revision is None
