"""`python -m app import users FILE.csv`: the HTTP import's service, run in this process with a
progress display and a summary of the rejected rows.

The file is stored and recorded exactly as an upload would be (so the import reads it the same
way), then `service.run_user_import` runs here instead of in a job. Progress is measured where
the importer reads the file: the storage handed to it counts the bytes and lines that go by,
which works on every database (the job's own progress is not written on SQLite).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import select

from app.core.db import open_database
from app.core.security import PasswordHasher
from app.core.settings import Settings
from app.core.storage import Storage, StoredObject, open_storage
from app.files import service as files
from app.imports import service
from app.imports.schemas import ImportResult, OnError
from app.jobs.queue import JobFailed
from app.users.models import User

READ_CHUNK_BYTES = 256 * 1024
# Without a terminal, one plain progress line this often (logs, CI, `| tee`).
PLAIN_LINE_EVERY_SECONDS = 2.0


class _ReadCounter:
    """A Storage that passes everything through and reports what the importer has read."""

    def __init__(self, inner: Storage, on_read: Callable[[bytes], None]) -> None:
        self.inner = inner
        self.on_read = on_read

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        return await self.inner.save(key, chunks, max_bytes=max_bytes)

    async def open(self, key: str, *, chunk_size: int = 65536) -> AsyncGenerator[bytes, None]:
        async with aclosing(self.inner.open(key, chunk_size=chunk_size)) as chunks:
            async for chunk in chunks:
                self.on_read(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)


class _ProgressReport:
    """Rows read, rate and time left: a rich progress bar on a terminal, plain lines elsewhere."""

    def __init__(
        self, console: Console, total_bytes: int, every_seconds: float = PLAIN_LINE_EVERY_SECONDS
    ) -> None:
        self.console = console
        self.every_seconds = every_seconds
        self.total = max(total_bytes, 1)
        self.bytes = 0
        self.lines = 0
        self.started = time.monotonic()
        self.last_line = self.started
        self.bar: Progress | None = None
        self.task_id: Any = None
        if console.is_terminal:
            self.bar = Progress(
                TextColumn("importing"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TextColumn("{task.fields[rate]:,.0f} rows/s"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console,
            )
            self.task_id = self.bar.add_task("import", total=self.total, rows=0, rate=0.0)

    @property
    def rows(self) -> int:
        return max(self.lines - 1, 0)  # the header is not a row

    def read(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        self.lines += chunk.count(b"\n")
        now = time.monotonic()
        rate = self.rows / max(now - self.started, 1e-6)
        if self.bar is not None:
            self.bar.update(self.task_id, completed=self.bytes, rows=self.rows, rate=rate)
        elif now - self.last_line >= self.every_seconds:
            self.last_line = now
            self._plain_line(now, rate)

    def _plain_line(self, now: float, rate: float) -> None:
        fraction = self.bytes / self.total
        elapsed = now - self.started
        left = elapsed * (1 - fraction) / fraction if fraction else 0.0
        self.console.print(
            f"importing: {self.rows:,} rows read ({fraction:.0%}), {rate:,.0f} rows/s, "
            f"about {left:.0f} s left",
            highlight=False,
        )

    def __enter__(self) -> _ProgressReport:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.update(self.task_id, completed=self.total)
            self.bar.stop()


async def run_import(
    settings: Settings,
    path: Path,
    *,
    on_error: OnError,
    owner_email: str | None,
    out: Console | None = None,
) -> int:
    """Import `path`; returns the exit status (0 imported, 1 rows rejected or file refused,
    2 no owner)."""
    out = out or Console()
    progress_console = Console(stderr=True)
    db = await open_database(settings)
    storage = open_storage(settings)
    try:
        async with db.sessionmaker() as session:
            owner = await _find_owner(session, owner_email)
            if owner is None:
                out.print(
                    "no superuser to own the import: create one with "
                    "`python -m app create-superuser EMAIL`, or name one with --as",
                    style="red",
                )
                return 2
            size = (await anyio.Path(path).stat()).st_size
            stored = await files.store_upload(
                session,
                storage,
                owner_id=owner,
                filename=path.name,
                content_type="text/csv",
                chunks=_read_file(path),
                max_bytes=max(size, 1),
            )
        hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        )
        with _ProgressReport(progress_console, size) as report:
            try:
                result = await service.run_user_import(
                    db.sessionmaker,
                    _ReadCounter(storage, report.read),
                    hasher,
                    file_id=stored.id,
                    on_error=on_error,
                    progress=_ignore_percent,
                )
                failure = None
            except JobFailed as exc:
                result, failure = exc.result, exc.message
    finally:
        await db.dispose()
    return _summarise(out, result, failure, on_error)


async def _find_owner(session: Any, email: str | None) -> int | None:
    query = select(User.id).where(User.is_superuser.is_(True), User.is_active.is_(True))
    if email is not None:
        query = query.where(User.email == email.strip().lower())
    owner: int | None = (await session.execute(query.order_by(User.id).limit(1))).scalar()
    await session.commit()
    return owner


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(READ_CHUNK_BYTES):
            yield chunk


async def _ignore_percent(percent: int) -> None:
    return None  # the read counter reports progress


def _summarise(out: Console, raw: Any, failure: str | None, on_error: OnError) -> int:
    result = ImportResult.model_validate(raw) if raw is not None else None
    if result is None:
        out.print(f"import failed: {failure}", style="red")
        return 1
    out.print(f"imported {result.imported:,} user(s), rejected {result.rejected:,} row(s)")
    if result.errors:
        table = Table("line", "column", "problem", title="rejected rows", title_justify="left")
        for error in result.errors:
            table.add_row(str(error.line), error.column or "", error.message)
        out.print(table)
        if result.rejected > len(result.errors):
            out.print(f"(the first {len(result.errors)} errors are listed)")
    if failure is not None:
        hint = " (use --on-error skip to import the good rows)" if on_error == "abort" else ""
        out.print(f"nothing imported: {failure}{hint}", style="red")
        return 1
    return 0
