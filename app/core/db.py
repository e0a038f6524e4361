"""The database: one async engine per process, made in the lifespan, disposed at shutdown.

PostgreSQL gets a sized, recycled pool (pre-ping optional, see DB_POOL_PRE_PING). SQLite gets
WAL, a busy timeout, foreign keys, and `BEGIN IMMEDIATE` so a transaction takes the write lock
up front instead of failing with "database is locked" when it upgrades from read to write.

The session dependency hands each request one `AsyncSession`. Services commit explicitly, so a
response is never sent before its commit succeeded; the dependency only rolls back and closes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import anyio
import structlog
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.concurrency import await_, greenlet_spawn

from app.core.settings import Settings

log = structlog.get_logger("app.db")

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


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, first come first served, and without overflow churn.

    Fairness: under load the stock pool lets a newly arriving request take a just-returned
    connection ahead of requests that have been waiting (sqlalchemy#7679): median latency stays
    low while p99 reaches seconds and some requests hit the pool timeout. A FIFO semaphore with
    one permit per connection (pool size + overflow) in front of the queue makes the wait fair;
    a request that waits longer than `pool_timeout` gets the usual TimeoutError (a 503 problem).

    Churn: the stock pool closes an overflow connection the moment it is returned to a full
    queue, and opens a new one when the next burst comes a moment later: under sustained load
    tens to hundreds of new PostgreSQL sessions per 10 s (bench/README.md), each a backend
    fork and a handshake, and the requests that wait for them become the slowest 1 %. Here the
    queue has room for every connection, and a returned connection beyond `pool_size` is
    closed only once overflow has not been needed (no more than `pool_size` connections
    checked out at once, nobody waiting) for `overflow_idle_seconds`.
    """

    overflow_idle_seconds = 30.0

    def __init__(self, creator: Any, pool_size: int = 5, **kwargs: Any) -> None:
        super().__init__(creator, pool_size=pool_size, **kwargs)
        self._pool_size = pool_size
        capacity = pool_size + max(self._max_overflow, 0)
        self._pool = self._queue_class(capacity, use_lifo=self._pool.use_lifo)
        # asyncio.Semaphore queues new callers behind existing waiters (FIFO).
        self._turnstile = asyncio.Semaphore(capacity)
        self._waiting = 0
        self._overflow_used_at = -math.inf  # time.monotonic() when overflow was last in use

    def size(self) -> int:
        return self._pool_size

    def checkedout(self) -> int:
        # The stock formula counts from the queue's capacity, which here includes the overflow.
        return self._pool_size - self._pool.qsize() + self._overflow

    def _do_get(self) -> ConnectionPoolEntry:
        if self._turnstile.locked():
            self._waiting += 1
            try:
                await_(self._wait_for_turn())
            finally:
                self._waiting -= 1
        else:
            # A free permit: acquire() returns without suspending, so no timer and no task.
            await_(self._turnstile.acquire())
        try:
            record = super()._do_get()
        except BaseException:
            self._turnstile.release()
            raise
        if self.checkedout() > self._pool_size:
            self._overflow_used_at = time.monotonic()
        return record

    async def _wait_for_turn(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._turnstile.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no connection free within {self._timeout:.1f} s "
                f"(pool size {self.size()}, overflow {self._max_overflow})",
                code="3o7r",
            ) from None

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            keep = (
                self._pool.qsize() < self._pool_size + self._waiting
                or time.monotonic() - self._overflow_used_at < self.overflow_idle_seconds
            )
            if keep:
                self._pool.put(record, False)  # never full: it has room for every connection
            else:
                try:
                    record.close()
                finally:
                    self._dec_overflow()
        finally:
            self._turnstile.release()

    def recreate(self) -> FairAsyncQueuePool:
        # The stock recreate() passes the queue's capacity as pool_size; pass the real one.
        self.logger.info("Pool recreating")
        return self.__class__(
            self._creator,
            pool_size=self._pool_size,
            max_overflow=self._max_overflow,
            pre_ping=self._pre_ping,
            use_lifo=self._pool.use_lifo,
            timeout=self._timeout,
            recycle=self._recycle,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            _dispatch=self.dispatch,
            dialect=self._dialect,
        )


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
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            poolclass=FairAsyncQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        )
        event.listen(
            engine.sync_engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_ms)
        )
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    return create_async_engine(
        url,
        poolclass=FairAsyncQueuePool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
    )


async def open_database(settings: Settings) -> Database:
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


class HotRead:
    """A one-row SELECT on the hottest path (the current user, on every authenticated request),
    at the cost of the driver's own `fetchrow`.

    On asyncpg it borrows a connection from SQLAlchemy's pool (`engine.raw_connection()`: the
    same pool, limits, fairness, recycling and metrics as everything else) and runs the
    statement, compiled once, on the driver. That skips the async `Connection` wrapper, the
    execution context and the result machinery, which cost more than the query itself
    (`python -m bench.hot_read`; figures in bench/README.md). Any error there discards the
    connection and runs the read again through Core, so a dead connection or a database error
    ends exactly as on every other path: SQLAlchemy invalidates the pool and the read retries
    once on a fresh connection; anything else is a `DBAPIError` (a 503 or a 500 problem).

    Other drivers (aiosqlite) always take the Core path. The driver returns raw values, so the
    statement's columns must need no result processing on PostgreSQL (plain types;
    `UTCDateTime` qualifies: asyncpg already returns aware UTC datetimes).
    `tests/core/test_hot_read.py` checks both paths return the same row.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[Dialect, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    async def one_or_none(self, engine: AsyncEngine, **params: Any) -> dict[str, Any] | None:
        if engine.dialect.driver == "asyncpg":
            sql, names, literals = self._compile(engine.dialect)
            values = [params[name] if name in params else literals[name] for name in names]
            connection = await engine.raw_connection()
            driver: Any = connection.driver_connection  # an asyncpg.Connection
            try:
                record = await driver.fetchrow(sql, *values)
            except Exception as exc:  # handled below, through Core
                # Terminated without awaiting: it may be dead, or mid-protocol.
                connection.invalidate(exc)
                log.warning("hot_read_fallback", error=type(exc).__name__)
            except BaseException as exc:  # cancelled mid-query: never hand this one out again
                connection.invalidate(exc)
                raise
            else:
                # In a greenlet: returning an overflow connection to an idle pool closes it.
                await greenlet_spawn(connection.close)
                return None if record is None else dict(record.items())
        return await self._through_core(engine, params)

    def _compile(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            statement = self.statement.compile(dialect=dialect)
            # positiontup: the bind names in $1, $2... order; params: values of literal binds.
            compiled = (str(statement), tuple(statement.positiontup or ()), statement.params)
            self._compiled[dialect] = compiled
        return compiled

    async def _through_core(
        self, engine: AsyncEngine, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        for attempt in (1, 2):
            try:
                async with engine.connect() as conn:
                    await conn.execution_options(**READ_ONLY)
                    row = (await conn.execute(self.statement, params)).first()
            except DBAPIError as exc:
                # A plain SELECT is safe to run again on a fresh connection.
                if not exc.connection_invalidated or attempt == 2:
                    raise
            else:
                return None if row is None else dict(row._mapping)
        raise AssertionError("unreachable")


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
