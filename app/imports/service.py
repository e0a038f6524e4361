"""Imports: a users CSV streamed to storage, then read row by row by a job and inserted in
batches, in constant memory whatever the file's size. No FastAPI in here.

The request stores the file (streamed, hashed, size-limited, like any upload), checks its header
line, and queues the job in the same transaction as the file's row. The job reads the stored
bytes in a worker thread (CSV parsing and validation are CPU work: off the event loop)
that hands batches of validated rows to the event loop through a one-slot channel, so at most
two batches exist at a time. All batches go into one database transaction:

- `abort` (the default): the first bad row stops all database work (the rest of the file is
  still read, to list its errors) and the transaction is rolled back: nothing is imported.
- `skip`: bad rows are left out and reported, good rows committed.

Duplicate emails are found without remembering every email of a million-row file: the reader
refuses a repeat inside its batch of `BATCH_SIZE` rows ("duplicate email (also on line N)"), and the
database finds the others: a row the insert did not create is a duplicate of a user who already
existed or of a row of an earlier batch ("a user with this email already exists").

How a batch goes in depends on the database, with the same verdicts either way:
- PostgreSQL: asyncpg's binary COPY straight into `users` while no email is taken; from the
  first batch with a taken email on, COPY into a temporary staging table, then one `INSERT ...
  SELECT ... ON CONFLICT (email) DO NOTHING` that also writes the ledger rows and answers with
  the lines it did not insert (app.imports.pg_copy). No parameter set per row: the import
  runs at the speed of parsing, a few microseconds a row (app.imports.fast_rows keeps the
  per-row check cheap: email_validator only for the addresses a strict ASCII pattern does not
  settle).
- SQLite: `INSERT ... ON CONFLICT (email) DO NOTHING RETURNING id, email` with one parameter set
  per row; a row whose email did not come back is a duplicate.

A `balance` column credits the new user through an `import_credit` ledger row written in the
same transaction (users start at 0, so `balance_after` is the amount): the ledger stays whole,
and a million credits are set-based INSERTs per batch instead of a million UPDATEs.

Passwords are hashed with the app's Argon2 parameters, a batch's hashes by as many tasks as the
hasher has threads. That is the slow part by far (tens of ms of CPU each at production
cost): a file of a million passwords takes hours; import such users without a password column
(they get an unusable password, shared random secret nobody knows) and let them set one.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
from sqlalchemy import Table
from sqlalchemy import insert as insert_rows
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.core.security import HASHING_THREADS, PasswordHasher
from app.core.storage import Storage
from app.files import service as files
from app.files.models import StoredFile
from app.imports.csv_rows import (
    BOM,
    MAX_LINE_BYTES,
    Batch,
    CsvFileError,
    UsersCsvReader,
    parse_header,
)
from app.imports.fast_rows import ParsedRow
from app.imports.pg_copy import CopyWriter
from app.imports.schemas import ImportResult, OnError, RowError
from app.jobs.models import Job
from app.jobs.queue import JobFailed, enqueue
from app.users.models import User
from app.wallet.models import Transaction, TransactionKind

JOB_KIND = "imports.users"
MAX_ERRORS = 100
# Rows per batch: a database round trip or three per batch (on PostgreSQL: empty the staging
# table, COPY, move), so a larger batch leaves more of the time to the rows themselves: a
# million rows ran at 52k rows/s in batches of 1,000, 78-86k in batches of 10,000 (through the
# staging table, quiet machine). Memory: two batches of parsed rows, a few MB.
BATCH_SIZE = 10_000
READ_CHUNK_BYTES = 256 * 1024
CREDIT_DESCRIPTION = "opening balance (import)"

Progress = Callable[[int], Awaitable[None]]


async def start_user_import(
    session: AsyncSession,
    storage: Storage,
    *,
    requested_by: int,
    filename: str,
    content_type: str,
    chunks: AsyncIterable[bytes],
    max_bytes: int,
    on_error: OnError,
) -> Job:
    """Store the CSV and queue its import. A file without a usable header line is refused here
    (422 `invalid_csv`) and not kept."""
    row = files.stage_upload(
        session, owner_id=requested_by, filename=filename, content_type=content_type
    )
    await files.save_staged(session, storage, row, chunks, max_bytes=max_bytes)
    try:
        await _check_header(storage, row.storage_key)
        job = await enqueue(
            session,
            kind=JOB_KIND,
            args={"file_id": str(row.id), "on_error": on_error},
            user_id=requested_by,
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await session.rollback()
            await storage.delete(row.storage_key)
        raise
    await files.commit_or_discard(session, storage, row)
    return job


async def _check_header(storage: Storage, key: str) -> None:
    head = bytearray()
    async with aclosing(storage.open(key, chunk_size=MAX_LINE_BYTES)) as chunks:
        async for chunk in chunks:
            head += chunk
            if b"\n" in head or len(head) > MAX_LINE_BYTES:
                break
    line = bytes(head).split(b"\n", 1)[0]
    if not line.strip():
        raise InvalidInput("the file is empty: a header line is required", code="invalid_csv")
    try:
        if line.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise UnicodeDecodeError("utf-8", line, 0, 2, "UTF-16 byte order mark")
        text = line.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "the header line is not UTF-8: send the file as UTF-8", code="invalid_csv"
        ) from exc
    if len(line) > MAX_LINE_BYTES:
        raise InvalidInput(
            f"the header line is longer than {MAX_LINE_BYTES} bytes", code="invalid_csv"
        )
    try:
        parse_header(text.rstrip("\r"))
    except CsvFileError as exc:
        raise InvalidInput(exc.error.message, code="invalid_csv") from exc


# --- the job -------------------------------------------------------------------------------


async def run_user_import(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    hasher: PasswordHasher,
    *,
    file_id: uuid.UUID,
    on_error: OnError,
    progress: Progress,
) -> dict[str, Any]:
    """Import the stored CSV. Returns the result (`imported`, `rejected`, `errors`); raises
    JobFailed, with the same result, when nothing was imported because of errors."""
    async with sessionmaker() as session:
        stored = await session.get(StoredFile, file_id)
        await session.commit()
    if stored is None:
        raise JobFailed(f"the uploaded file {file_id} no longer exists")
    importer = _Importer(hasher, on_error=on_error)
    try:
        async with sessionmaker() as session:
            connection = await session.connection()
            if connection.dialect.name == "sqlite":
                # SQLite has one writer: the import's transaction holds the lock, so the job's
                # progress (written by another connection) would wait for it, then fail.
                progress = _no_progress
            await _pump(storage, stored, importer, connection, progress)
            result = importer.result()
            if importer.rejected and on_error == "abort":
                await session.rollback()
                raise JobFailed(
                    f"{importer.rejected} row(s) rejected: nothing was imported",
                    result=result.model_dump(),
                )
            await session.commit()
    except CsvFileError as exc:
        result = ImportResult(imported=0, rejected=0, errors=[exc.error])
        raise JobFailed(exc.error.message, result=result.model_dump()) from exc
    except FileNotFoundError as exc:
        raise JobFailed(f"the bytes of the uploaded file {file_id} are gone") from exc
    return result.model_dump()


async def _no_progress(percent: int) -> None:
    return None


async def _pump(
    storage: Storage,
    stored: StoredFile,
    importer: _Importer,
    connection: AsyncConnection,
    progress: Progress,
) -> None:
    """Parse in a worker thread, insert on the event loop, one batch in flight between them."""
    chunks = storage.open(stored.storage_key, chunk_size=READ_CHUNK_BYTES)
    send, receive = anyio.create_memory_object_stream[Batch](max_buffer_size=1)

    async def next_chunk() -> bytes | None:
        try:
            return await anext(chunks)
        except StopAsyncIteration:
            return None

    def pull() -> Iterator[bytes]:
        while (chunk := anyio.from_thread.run(next_chunk)) is not None:
            yield chunk

    def produce() -> None:
        try:
            for batch in UsersCsvReader(pull(), batch_size=BATCH_SIZE).batches():
                anyio.from_thread.run(send.send, batch)
        finally:
            anyio.from_thread.run_sync(send.close)

    failures: list[BaseException] = []

    async def producer() -> None:
        try:
            await anyio.to_thread.run_sync(produce)
        except anyio.BrokenResourceError:
            pass  # the consumer failed first: its own error is the one that counts
        except Exception as exc:  # raised below, unwrapped from the task group
            failures.append(exc)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(producer)
            with receive:
                try:
                    async for batch in receive:
                        await importer.add(connection, batch)
                        if stored.size:
                            await progress(min(99, batch.bytes_read * 100 // stored.size))
                except Exception as exc:
                    failures.insert(0, exc)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
    if failures:
        raise failures[0]


class _Importer:
    def __init__(self, hasher: PasswordHasher, *, on_error: OnError) -> None:
        self.hasher = hasher
        self.on_error = on_error
        self.imported = 0
        self.rejected = 0
        self.errors: list[RowError] = []
        self._unusable_hash: str | None = None
        self._copy_writer: CopyWriter | None = None

    def result(self) -> ImportResult:
        imported = 0 if (self.rejected and self.on_error == "abort") else self.imported
        return ImportResult(imported=imported, rejected=self.rejected, errors=self.errors)

    def _report(self, errors: list[RowError]) -> None:
        room = MAX_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(sorted(errors, key=lambda e: e.line)[:room])

    async def add(self, connection: AsyncConnection, batch: Batch) -> None:
        self.rejected += batch.rejected
        errors = list(batch.errors)
        if batch.rows and not (self.on_error == "abort" and self.rejected):
            if connection.dialect.name == "postgresql":
                duplicates = await self._copy(connection, batch.rows)
            else:
                duplicates = await self._insert(connection, batch.rows)
            self.imported += len(batch.rows) - len(duplicates)
            self.rejected += len(duplicates)
            errors += [
                RowError(line=line, column="email", message="a user with this email already exists")
                for line in duplicates
            ]
        self._report(errors)

    async def _copy(self, connection: AsyncConnection, rows: list[ParsedRow]) -> list[int]:
        """PostgreSQL: COPY into a staging table, then one INSERT ... SELECT (app.imports.pg_copy).
        Returns the lines of the duplicates."""
        if self._copy_writer is None:
            self._copy_writer = CopyWriter(connection, credit_description=CREDIT_DESCRIPTION)
        records: list[ParsedRow] = rows
        if any(row.password is not None for row in rows):
            hashes = await self._hashes(rows)
            records = [
                ParsedRow(row.line, row.email, row.name, row.age, hashed, row.balance_minor)
                for row, hashed in zip(rows, hashes, strict=True)
            ]
        return await self._copy_writer.insert(
            records, now=utcnow(), unusable_hash=await self._unusable()
        )

    async def _insert(self, connection: AsyncConnection, rows: list[ParsedRow]) -> list[int]:
        """SQLite: one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING per batch. Returns
        the lines of the duplicates."""
        hashes = await self._hashes(rows)
        now = utcnow()
        users: Table = User.__table__  # type: ignore[assignment]
        statement = (
            sqlite.insert(users)
            .on_conflict_do_nothing(index_elements=[users.c.email])
            .returning(users.c.id, users.c.email)
        )
        values = [
            {
                "email": row.email,
                "hashed_password": hashed,
                "name": row.name,
                "age": row.age,
                "is_active": True,
                "is_superuser": False,
                "balance_minor": row.balance_minor or 0,
                "created_at": now,
                "updated_at": now,
            }
            for row, hashed in zip(rows, hashes, strict=True)
        ]
        created = {email: user_id for user_id, email in await connection.execute(statement, values)}
        credits = [
            {
                "id": uuid.uuid4(),
                "user_id": created[row.email],
                "kind": TransactionKind.IMPORT_CREDIT.value,
                "amount_minor": row.balance_minor,
                "balance_after_minor": row.balance_minor,
                "description": CREDIT_DESCRIPTION,
                "created_at": now,
            }
            for row in rows
            if row.balance_minor and row.email in created
        ]
        if credits:
            await connection.execute(insert_rows(Transaction), credits)
        return [row.line for row in rows if row.email not in created]

    async def _unusable(self) -> str:
        """The hash of users imported without a password: of a random secret nobody knows."""
        if self._unusable_hash is None:
            self._unusable_hash = await self.hasher.hash(secrets.token_urlsafe(32))
        return self._unusable_hash

    async def _hashes(self, rows: list[ParsedRow]) -> list[str]:
        unusable = await self._unusable() if any(row.password is None for row in rows) else ""
        hashes = [unusable if row.password is None else "" for row in rows]
        todo = iter(
            [(i, password) for i, row in enumerate(rows) if (password := row.password) is not None]
        )

        async def hash_some() -> None:
            for index, password in todo:  # shared: each task takes the next one
                hashes[index] = await self.hasher.hash(password)

        async with anyio.create_task_group() as group:
            for _ in range(HASHING_THREADS):
                group.start_soon(hash_some)
        return hashes
