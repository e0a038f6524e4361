"""The throwaway benchmark database: create, migrate, seed, mint tokens, count sessions, drop."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from app.core.security import create_access_token
from app.migrate import upgrade

# Only plain identifiers: the name is interpolated into CREATE/DROP DATABASE.
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Any string will do: nobody logs in during the benchmark, tokens are minted directly.
_HASHED_PASSWORD = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash$not-a-real-hash"


def plain_dsn(sqlalchemy_url: str) -> str:
    """postgresql+asyncpg://... -> postgresql://... (what asyncpg itself accepts)."""
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def database_name(sqlalchemy_url: str) -> str:
    name = make_url(sqlalchemy_url).database or ""
    if not _DB_NAME.match(name):
        raise SystemExit(f"refusing database name {name!r}: use a plain identifier")
    return name


def _maintenance_dsn(sqlalchemy_url: str) -> str:
    # CREATE/DROP DATABASE must run while connected to another database.
    return plain_dsn(make_url(sqlalchemy_url).set(database="postgres").render_as_string(False))


async def recreate(sqlalchemy_url: str) -> None:
    name = database_name(sqlalchemy_url)
    conn = await asyncpg.connect(_maintenance_dsn(sqlalchemy_url))
    try:
        # WITH (FORCE) ends sessions left behind by an interrupted earlier run (PostgreSQL 13+).
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop(sqlalchemy_url: str) -> None:
    name = database_name(sqlalchemy_url)
    conn = await asyncpg.connect(_maintenance_dsn(sqlalchemy_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(sqlalchemy_url: str) -> None:
    """Blocking: Alembic runs its own event loop, so call it outside asyncio.run."""
    upgrade(sqlalchemy_url)


async def seed_users(sqlalchemy_url: str, count: int) -> list[int]:
    """Insert `count` active users straight through asyncpg's COPY; return their ids."""
    now = datetime.now(UTC)
    records = [
        (
            f"bench-user-{i:05d}@example.com",  # lower-case, unique
            _HASHED_PASSWORD,
            f"Bench User {i}",
            20 + i % 60,
            True,
            False,
            0,
            now,
            now,
        )
        for i in range(count)
    ]
    conn = await asyncpg.connect(plain_dsn(sqlalchemy_url))
    try:
        await conn.copy_records_to_table(
            "users",
            records=records,
            columns=[
                "email",
                "hashed_password",
                "name",
                "age",
                "is_active",
                "is_superuser",
                "balance_minor",
                "created_at",
                "updated_at",
            ],
        )
        # Fresh statistics, so the planner's first choices are not made on an empty table.
        await conn.execute("ANALYZE users")
        rows = await conn.fetch("SELECT id FROM users ORDER BY id")
    finally:
        await conn.close()
    return [row["id"] for row in rows]


def write_tokens(user_ids: list[int], secret: str, path: Path, ttl_seconds: int) -> None:
    """One access token per user, one per line, for the wrk script to pick from."""
    tokens = (
        create_access_token(user_id, secret=secret, ttl_seconds=ttl_seconds) for user_id in user_ids
    )
    path.write_text("".join(f"{token}\n" for token in tokens))


async def sessions_opened(sqlalchemy_url: str) -> int:
    """Sessions ever opened on the bench database (the delta over a run shows pool churn)."""
    conn = await asyncpg.connect(plain_dsn(sqlalchemy_url))
    try:
        value = await conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return int(value or 0)
