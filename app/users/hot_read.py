"""`HotRead`: a one-row SELECT at the cost of the driver's own `fetchrow`, for the hottest read
of the service (the current user, once per authenticated request).

On asyncpg it takes a connection from SQLAlchemy's pool (`engine.connect()`: the same pool,
limits, recycling and metrics as everything else), and runs the statement, compiled once, on
the driver connection underneath (`get_raw_connection().driver_connection`). That skips the
execution context and the result machinery, which cost more than the query: CPU per read
(`python -m bench.hot_read`, 32 clients, PostgreSQL on the same host), as a multiple of a bare
`asyncpg` pool's `fetchrow` (one run, 3 rounds; bench/README.md):

    asyncpg pool fetchrow                       1.00
    HotRead (this module)                       1.33
    Core, engine.connect() in autocommit        3.13

about 500 µs of CPU saved per authenticated request.

Any error on the driver discards that connection and runs the read again through Core, so a
dead connection or a database error ends as on every other path: SQLAlchemy invalidates the
pool and the read retries once on a fresh connection; anything else is a `DBAPIError` (a 503
or a 500 problem). Other drivers (aiosqlite) always take the Core path.

The driver returns raw values, so the statement's columns must need no result processing on
PostgreSQL (plain types; `UTCDateTime` qualifies: asyncpg already returns aware UTC datetimes).
`tests/users/test_hot_read.py` checks both paths return the same row.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from app.core.db import READ_ONLY

log = structlog.get_logger("app.users.hot_read")


class HotRead:
    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[Dialect, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    async def one_or_none(self, engine: AsyncEngine, **params: Any) -> dict[str, Any] | None:
        if engine.dialect.driver != "asyncpg":
            return await self._through_core(engine, params)
        sql, names, literals = self._compile(engine.dialect)
        values = [params[name] if name in params else literals[name] for name in names]
        async with engine.connect() as conn:
            pooled = await conn.get_raw_connection()
            driver: Any = pooled.driver_connection  # an asyncpg.Connection
            try:
                record = await driver.fetchrow(sql, *values)
            except Exception as exc:  # read again below, through Core
                # It may be dead, or mid-protocol: never hand it out again.
                await conn.invalidate(exc)
                log.warning("hot_read_fallback", error=type(exc).__name__)
            except BaseException as exc:
                # Cancelled mid-query: discard it without awaiting anything more.
                pooled.invalidate(exc)
                raise
            else:
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
