"""Local storage: a save is streamed, hashed and atomic; an oversized, failed or cancelled save
leaves nothing behind; keys cannot escape the root."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from app.core.storage import InvalidKey, LocalStorage, ObjectTooLarge, validate_key


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(storage: LocalStorage, key: str, chunk_size: int = 65536) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key, chunk_size=chunk_size)])


async def leftovers(root: Path) -> list[str]:
    def walk() -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    return await anyio.to_thread.run_sync(walk)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path)


async def test_save_then_open_streams_the_same_bytes(storage: LocalStorage) -> None:
    parts = [os.urandom(1000), b"", os.urandom(3 * 1024 * 1024), b"tail"]
    stored = await storage.save("files/a", chunks(*parts))
    whole = b"".join(parts)
    assert stored.key == "files/a"
    assert stored.size == len(whole)
    assert stored.sha256 == hashlib.sha256(whole).hexdigest()
    assert await read_all(storage, "files/a") == whole
    assert await storage.exists("files/a")


async def test_open_reads_in_chunks_of_the_asked_size(storage: LocalStorage) -> None:
    await storage.save("small", chunks(b"0123456789abcdefghij"))
    pieces = [chunk async for chunk in storage.open("small", chunk_size=7)]
    assert pieces == [b"0123456", b"789abcd", b"efghij"]


async def test_empty_object(storage: LocalStorage) -> None:
    stored = await storage.save("empty", chunks())
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await read_all(storage, "empty") == b""


async def test_over_the_limit_raises_and_leaves_nothing(
    storage: LocalStorage, tmp_path: Path
) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1000

    with pytest.raises(ObjectTooLarge) as caught:
        await storage.save("files/big", endless(), max_bytes=10_500)
    assert caught.value.status_code == 413
    assert caught.value.limit == 10_500
    assert pulled == 11  # stopped at the first chunk past the limit, not at the end
    assert await leftovers(tmp_path) == []
    assert not await storage.exists("files/big")


async def test_exactly_the_limit_is_accepted(storage: LocalStorage) -> None:
    stored = await storage.save("k", chunks(b"a" * 10, b"b" * 10), max_bytes=20)
    assert stored.size == 20


async def test_a_failing_stream_leaves_nothing_and_keeps_the_old_object(
    storage: LocalStorage, tmp_path: Path
) -> None:
    await storage.save("doc", chunks(b"version 1"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"version 2, half"
        raise ValueError("client went away")

    with pytest.raises(ValueError, match="client went away"):
        await storage.save("doc", broken())
    assert await read_all(storage, "doc") == b"version 1"
    assert await leftovers(tmp_path) == ["doc"]


async def test_a_cancelled_save_leaves_nothing(storage: LocalStorage, tmp_path: Path) -> None:
    started = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first"
        started.set()
        await anyio.sleep(30)
        yield b"never"

    async with anyio.create_task_group() as tg:
        tg.start_soon(storage.save, "slow", slow())
        await started.wait()
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert await leftovers(tmp_path) == []


async def test_open_missing_raises_file_not_found(storage: LocalStorage) -> None:
    with pytest.raises(FileNotFoundError):
        await read_all(storage, "files/missing")
    assert not await storage.exists("files/missing")


async def test_delete_is_idempotent(storage: LocalStorage) -> None:
    await storage.save("gone", chunks(b"x"))
    await storage.delete("gone")
    await storage.delete("gone")
    assert not await storage.exists("gone")


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", ".hidden", "a\\b", "a b"]
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


async def test_keys_never_escape_the_root(storage: LocalStorage) -> None:
    with pytest.raises(InvalidKey):
        await storage.save("../outside", chunks(b"x"))


async def test_a_relative_root_costs_no_blocking_call_on_the_loop() -> None:
    # Built in the lifespan, on the event loop: resolving the working directory there would
    # be a blocking call (the default STORAGE_DIR is relative).
    storage = LocalStorage(Path("var/relative-root"))
    assert storage.root == Path("var/relative-root")
