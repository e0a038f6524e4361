"""Storage: where uploaded files and job results keep their bytes. Nothing else in the code knows
where that is; it saves a stream under a key, opens a key as a stream, deletes a key.

Keys are relative, slash-separated names such as `uploads/<uuid>` or `jobs/<id>/result.csv`
(letters, digits, `.`, `_`, `-`; no empty, `.` or `..` segment), so a key can never escape the
storage root.

`LocalStorage` keeps them in a folder. A save writes to a temporary file next to the target,
hashing as it goes, and renames it into place only once the whole stream has arrived: a reader
never sees half a file, and a failed, cancelled or oversized save leaves nothing behind.
File I/O runs in worker threads (anyio), never on the event loop.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import anyio

from app.core.errors import AppError

if TYPE_CHECKING:
    from app.core.settings import Settings

# Chunks from the network are small (often 64 KiB or less); they are gathered into writes of
# this size so a 1 GiB upload costs ~1000 thread hops, not ~16000.
WRITE_BUFFER_BYTES = 1024 * 1024

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # hex digest


class ObjectTooLarge(AppError):
    """The stream went past `max_bytes`. Raised as soon as the limit is crossed, before the rest
    of the stream is read; the partial file is already deleted."""

    status_code = 413
    code = "content_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"content exceeds the limit of {limit} bytes")
        self.limit = limit


class StorageFull(AppError):
    """The disk (or quota) ran out while an object was written; the partial file is deleted.
    507: the request was fine, the server cannot store it now."""

    status_code = 507
    code = "insufficient_storage"

    def __init__(self) -> None:
        super().__init__("the server has no room to store this now; nothing was kept")


# Out of space, and out of quota: the same answer.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


class InvalidKey(ValueError):
    """A key that is not a safe relative name (a programming error, never client input)."""


def validate_key(key: str) -> str:
    segments = key.split("/")
    if not key or any(not _SEGMENT.match(segment) for segment in segments):
        raise InvalidKey(f"invalid storage key: {key!r}")
    return key


class Storage(Protocol):
    async def save(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        """Store the stream under `key` (replacing any object there), hashing it as it goes.
        Raises ObjectTooLarge past `max_bytes` and leaves nothing behind."""
        ...

    def open(self, key: str, *, chunk_size: int = 65536) -> AsyncGenerator[bytes, None]:
        """The object's bytes, streamed. Raises FileNotFoundError (on the first iteration)
        when there is no such object."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; nothing happens if it is already gone."""
        ...

    async def exists(self, key: str) -> bool: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        # Not `.absolute()`: that reads the working directory (a blocking call), and this runs
        # in the lifespan, on the event loop. Relative roots resolve in the worker threads.
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        target = self._path(key)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.part")
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle: BinaryIO = await anyio.to_thread.run_sync(open, temporary, "xb")
        try:
            buffer = bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER_BYTES:
                    await anyio.to_thread.run_sync(_write, handle, digest, bytes(buffer))
                    buffer.clear()
            if buffer:
                await anyio.to_thread.run_sync(_write, handle, digest, bytes(buffer))
            await anyio.to_thread.run_sync(_finish, handle, temporary, target)
        except BaseException as exc:
            # Shielded: a cancelled upload (client gone) must still clean up after itself.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, handle, temporary)
            if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
                raise StorageFull from exc
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    async def open(self, key: str, *, chunk_size: int = 65536) -> AsyncGenerator[bytes, None]:
        path = self._path(key)
        async with await anyio.open_file(path, "rb") as handle:
            while chunk := await handle.read(chunk_size):
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.Path(self._path(key)).unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await anyio.Path(self._path(key)).is_file()


def _write(handle: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    # hashlib releases the GIL on large buffers, so hashing here costs the loop nothing.
    digest.update(data)
    handle.write(data)


def _finish(handle: BinaryIO, temporary: Path, target: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(temporary, target)  # atomic: readers see the old object or the whole new one


def _discard(handle: BinaryIO, temporary: Path) -> None:
    try:
        handle.close()  # flushes what is buffered: on a full disk that fails again
    except OSError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


def open_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.storage_dir)
