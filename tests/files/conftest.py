"""Helpers of the file tests: settings with a storage folder of the test's own and a small
upload limit, and multipart bodies built by hand so that they can be streamed, truncated or
broken on purpose."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.settings import Settings
from app.files.models import StoredFile
from tests.conftest import make_settings
from tests.e2e.conftest import fresh_database, start_server

__all__ = ["fresh_database", "start_server"]  # the real-server fixtures, for the memory test

FILES = "/api/v1/files"
UPLOAD_LIMIT = 1024 * 1024


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def settings(database_url: str, storage_dir: Path) -> Settings:
    return make_settings(database_url, storage_dir=storage_dir, max_upload_bytes=UPLOAD_LIMIT)


@dataclass
class Multipart:
    """One multipart/form-data body: `head` + the file's bytes + `tail`."""

    boundary: str
    head: bytes
    tail: bytes

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def headers(self, size: int | None, **extra: str) -> dict[str, str]:
        headers = {"Content-Type": self.content_type, **extra}
        if size is not None:
            headers["Content-Length"] = str(size)
        return headers

    def length(self, file_size: int) -> int:
        return len(self.head) + file_size + len(self.tail)

    def body(self, content: bytes) -> bytes:
        return self.head + content + self.tail


def multipart(
    filename: str = "report.txt",
    content_type: str = "text/plain",
    field: str = "file",
    before: Iterable[tuple[str, str]] = (),
) -> Multipart:
    boundary = uuid.uuid4().hex
    head = b""
    for name, value in before:
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return Multipart(boundary, head, f"\r\n--{boundary}--\r\n".encode())


class CountingBody:
    """An upload body produced on the fly, chunk by chunk, counting what the server pulled."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self.parts = parts
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.pulled += len(part)
            yield part


def pattern_chunks(size: int, chunk: int = 64 * 1024) -> Iterable[bytes]:
    """`size` bytes of a repeating, non-constant pattern, in chunks."""
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


async def stored_objects(storage_dir: Path) -> list[str]:
    """Every file under the storage folder, temporary ones included."""

    def walk() -> list[str]:
        if not storage_dir.exists():
            return []
        return sorted(
            str(p.relative_to(storage_dir)) for p in storage_dir.rglob("*") if p.is_file()
        )

    return await anyio.to_thread.run_sync(walk)


async def file_rows(app: FastAPI) -> int:
    async with app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(StoredFile)) or 0)
