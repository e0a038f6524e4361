"""Files: metadata in the database, bytes in storage. No FastAPI in here.

An upload is written to storage first (streamed, hashed, size-checked) and its row committed
after; if the commit fails the bytes are deleted, so there is never a row without bytes. A
delete removes the row first, then the bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator

import anyio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import READ_ONLY
from app.core.errors import NotFound
from app.core.storage import Storage
from app.files.models import StoredFile


def storage_key(file_id: uuid.UUID) -> str:
    return f"files/{file_id}"


async def store_upload(
    session: AsyncSession,
    storage: Storage,
    *,
    owner_id: int,
    filename: str,
    content_type: str,
    chunks: AsyncIterable[bytes],
    max_bytes: int,
) -> StoredFile:
    """Stream `chunks` into storage and record the file. Raises ObjectTooLarge (413) as soon as
    the stream passes `max_bytes`, and whatever the stream itself raises (a malformed upload);
    either way nothing is kept."""
    row = stage_upload(session, owner_id=owner_id, filename=filename, content_type=content_type)
    await save_staged(session, storage, row, chunks, max_bytes=max_bytes)
    await commit_or_discard(session, storage, row)
    return row


def stage_upload(
    session: AsyncSession, *, owner_id: int, filename: str, content_type: str
) -> StoredFile:
    """A file row for an upload about to be stored: call `save_staged`, add whatever else
    belongs in the same transaction (a job), then `commit_or_discard`."""
    file_id = uuid.uuid4()
    return StoredFile(
        id=file_id,
        owner_id=owner_id,
        filename=filename,
        content_type=content_type,
        storage_key=storage_key(file_id),
    )


async def save_staged(
    session: AsyncSession,
    storage: Storage,
    row: StoredFile,
    chunks: AsyncIterable[bytes],
    *,
    max_bytes: int,
) -> None:
    stored = await storage.save(row.storage_key, chunks, max_bytes=max_bytes)
    row.size, row.sha256 = stored.size, stored.sha256
    session.add(row)


async def commit_or_discard(session: AsyncSession, storage: Storage, row: StoredFile) -> None:
    try:
        await session.commit()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await session.rollback()
            await storage.delete(row.storage_key)
        raise


async def get_file(
    session: AsyncSession, file_id: uuid.UUID, *, user_id: int, is_superuser: bool
) -> StoredFile:
    """The file, if the caller owns it or is a superuser; anyone else is told it does not
    exist (a 404 reveals nothing that a 403 would)."""
    await session.connection(execution_options=READ_ONLY)
    row = await session.get(StoredFile, file_id)
    await session.commit()  # one read: the connection goes back before any body streams
    if row is None or (row.owner_id != user_id and not is_superuser):
        raise NotFound(f"file {file_id} not found", code="file_not_found")
    return row


async def open_content(storage: Storage, row: StoredFile) -> AsyncIterator[bytes]:
    """The file's bytes, streamed. The first chunk is read here, so a missing object is a
    404 before any response has started, not a broken 200."""
    chunks = storage.open(row.storage_key)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except FileNotFoundError as exc:
        raise NotFound(f"file {row.id} has no content", code="file_content_missing") from exc
    return _prepend(first, chunks)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()


async def delete_file(
    session: AsyncSession, storage: Storage, file_id: uuid.UUID, *, user_id: int, is_superuser: bool
) -> None:
    row = await get_file(session, file_id, user_id=user_id, is_superuser=is_superuser)
    await session.execute(delete(StoredFile).where(StoredFile.id == row.id))
    await session.commit()
    # After the commit: a failure here leaves unreferenced bytes, never a row without bytes.
    await storage.delete(row.storage_key)


async def delete_owner_files(session: AsyncSession, owner_id: int) -> list[str]:
    """Delete every file row of `owner_id` in the caller's transaction (account deletion) and
    return their storage keys: the caller deletes the bytes after its commit, as `delete_file`
    does."""
    keys = list(
        await session.scalars(select(StoredFile.storage_key).where(StoredFile.owner_id == owner_id))
    )
    await session.execute(delete(StoredFile).where(StoredFile.owner_id == owner_id))
    return keys
