"""The database, as a lifecycle: the models' `Base`, one async engine per process made in the
lifespan (`open_database`) and disposed at its end, and one session per request (`SessionDep`).

PostgreSQL gets SQLAlchemy's stock async queue pool, sized and recycled from settings (pre-ping
optional, see DB_POOL_PRE_PING). Fairness and bounded waits under load come from admission
control in front of it (`app.core.admission`), not from the pool. SQLite gets WAL, a busy
timeout, foreign keys, and `BEGIN IMMEDIATE` so a transaction takes the write lock up front
instead of failing with "database is locked" when it upgrades from read to write.

Outside development no database error carries the values it was given (bound parameters, or
the values PostgreSQL echoes in a constraint error's DETAIL): they would put emails and message
bodies into the logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import anyio
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection, Dialect, ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from app.core.settings import Environment, Settings

# --- the models' base ------------------------------------------------------------------------

# Named constraints, so batch migrations on SQLite can find and alter them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out. SQLite drops the offset, so it is put back on load;
    a naive datetime is a bug and is refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the engine, made in the lifespan ----------------------------------------------------------


class DatabaseUnreachable(OperationalError):
    """No connection could be opened: refused, reset, unresolvable, timed out, or turned away
    by the server (starting up, shutting down, too many clients). asyncpg raises the network
    cases as plain `OSError`s, which SQLAlchemy lets through unwrapped (a 500 and a traceback
    per request during an outage); wrapped here, every connect failure is a `DBAPIError` with
    `connection_invalidated`, handled where a lost connection is (a 503, a retry)."""


def _connect_or_unreachable(
    dialect: Dialect, _: ConnectionPoolEntry, cargs: Any, cparams: Any
) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, dialect.loaded_dbapi.Error) as exc:
        raise DatabaseUnreachable(None, None, exc, connection_invalidated=True) from exc


def _without_rejected_values(context: ExceptionContext) -> None:
    """PostgreSQL repeats the values a constraint rejected in its DETAIL ("Key (email)=(...)
    already exists"), and asyncpg prints that with the error, so a logged traceback carries
    what `hide_parameters` keeps out. Outside development the DETAIL is dropped."""
    driver_error = context.original_exception.__cause__
    if getattr(driver_error, "detail", None):
        driver_error.detail = None  # type: ignore[union-attr]


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, not the sqlite3 module (which would
        # skip it for SELECT and SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _begin_immediate(conn: Connection) -> None:
    # Autocommit reads (see READ_ONLY) take no lock at all.
    if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        # Errors show the SQL but not its values (emails, message bodies), except in development.
        hide_parameters=settings.environment is not Environment.DEVELOPMENT,
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unreachable)
    if settings.environment is not Environment.DEVELOPMENT:
        event.listen(engine.sync_engine, "handle_error", _without_rejected_values)
    if url.get_backend_name() == "sqlite":
        event.listen(
            engine.sync_engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_ms)
        )
        event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


async def open_database(settings: Settings) -> Database:
    """Called by the lifespan; `Database.dispose` is registered to run at its end."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        await anyio.Path(Path(url.database).parent).mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings)
    # expire_on_commit=False: objects stay readable after commit without a lazy (implicit IO)
    # refresh, which async SQLAlchemy cannot do.
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))


# Execution options for a single read that needs no transaction: one round trip (no BEGIN and
# COMMIT around it) on PostgreSQL, no write lock on SQLite. Use it for the first statement of
# a session, then `commit()` to hand the connection back:
#     await session.connection(execution_options=READ_ONLY)
READ_ONLY = {"isolation_level": "AUTOCOMMIT"}


# --- one session per request -------------------------------------------------------------------


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. No commit here: since FastAPI 0.118 code after `yield` runs
    after the response is sent, so a commit here could fail behind a 2xx."""
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


# scope="function": the session is closed (its connection back in the pool) as soon as the
# endpoint returns, before the response is sent, not after the client has read it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
