"""Exports: a user's transactions as CSV, written by a job into storage, in constant memory.

The rows are read in keyset batches (`WHERE (created_at, id) > :last ORDER BY created_at, id
LIMIT n`), each batch in a short autocommit read of its own, so neither memory nor a database
connection is held for the length of the export, whatever the number of rows. Each batch is
encoded with the csv module and handed to `Storage.save` as one chunk of its stream; storage
writes it to a temporary file that becomes the result only once the whole stream arrived.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import READ_ONLY, utcnow
from app.core.money import format_minor
from app.jobs.models import Job
from app.jobs.queue import enqueue
from app.wallet.models import Transaction

if TYPE_CHECKING:
    from app.core.storage import Storage

EXPORT_KIND = "exports.transactions"
COLUMNS = ("id", "kind", "amount", "balance_after", "counterparty_id", "description", "created_at")
BATCH_SIZE = 1000
# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"); a
# description is free text from another user, so such a cell is prefixed with a quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Progress = Callable[[int], Awaitable[None]]


async def request_transactions_export(session: AsyncSession, *, user_id: int) -> Job:
    """Queue an export of the user's transactions; the job is handed off once this commits."""
    job = await enqueue(session, kind=EXPORT_KIND, args={}, user_id=user_id)
    await session.commit()
    return job


async def export_transactions(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    key: str,
    *,
    user_id: int,
    progress: Progress,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Write the user's transactions, oldest first, as CSV under `key`; report progress.

    The export covers the transactions that existed when it started (a snapshot bound on
    `created_at`), so the count behind the progress stays true while new payments arrive.
    """
    until = utcnow()
    async with sessionmaker() as session:
        await session.connection(execution_options=READ_ONLY)
        total = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.user_id == user_id, Transaction.created_at <= until)
        )
        await session.commit()
    written = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal written
        yield _encode([COLUMNS])
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            batch = await _read_batch(sessionmaker, user_id, until, after, batch_size)
            if not batch:
                return
            yield _encode(_csv_row(row) for row in batch)
            written += len(batch)
            last = batch[-1]
            after = (last.created_at, last.id)
            await progress(min(99, written * 100 // max(total or 0, 1)))
            if len(batch) < batch_size:
                return

    stored = await storage.save(key, chunks())
    return {"rows": written, "bytes": stored.size, "sha256": stored.sha256}


async def _read_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: int,
    until: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    batch_size: int,
) -> Sequence[Any]:
    query = (
        select(
            Transaction.id,
            Transaction.kind,
            Transaction.amount_minor,
            Transaction.balance_after_minor,
            Transaction.counterparty_id,
            Transaction.description,
            Transaction.created_at,
        )
        .where(Transaction.user_id == user_id, Transaction.created_at <= until)
        .order_by(Transaction.created_at, Transaction.id)
        .limit(batch_size)
    )
    if after is not None:
        created_at, last_id = after
        query = query.where(
            or_(
                Transaction.created_at > created_at,
                and_(Transaction.created_at == created_at, Transaction.id > last_id),
            )
        )
    # Plain rows, not ORM objects, in a session of their own: nothing accumulates between
    # batches, and the connection goes back to the pool between them.
    async with sessionmaker() as session:
        await session.connection(execution_options=READ_ONLY)
        rows = (await session.execute(query)).all()
        await session.commit()
    return rows


def _csv_row(row: Row[Any]) -> tuple[str, ...]:
    description = row.description or ""
    if description.startswith(_FORMULA_STARTS):
        description = "'" + description
    return (
        str(row.id),
        row.kind,
        format_minor(row.amount_minor),
        format_minor(row.balance_after_minor),
        "" if row.counterparty_id is None else str(row.counterparty_id),
        description,
        row.created_at.isoformat(),
    )


def _encode(rows: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")
