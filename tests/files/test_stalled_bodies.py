"""A request body that stops arriving is answered 408 after BODY_READ_TIMEOUT and leaves nothing
behind: before, 300 uploads that stalled after 1 KiB were all still open after 62 s, each holding
a socket and a `.part` file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from app.core.settings import Settings
from tests.conftest import make_settings
from tests.files.conftest import UPLOAD_LIMIT, file_rows, multipart, stored_objects

TIMEOUT = 2.0


@pytest.fixture
def settings(database_url: str, storage_dir: Path) -> Settings:
    return make_settings(
        database_url,
        storage_dir=storage_dir,
        max_upload_bytes=UPLOAD_LIMIT,
        body_read_timeout=TIMEOUT,
    )


async def stall_after(first: bytes) -> AsyncIterator[bytes]:
    """Send `first`, then nothing, ever (the request is bounded by the server's timeout)."""
    yield first
    await anyio.Event().wait()
    yield b""  # never reached


def assert_408(response: Response) -> None:
    assert response.status_code == 408, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "request_timeout"


async def test_a_stalled_upload_is_408_and_its_partial_file_is_removed(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    form = multipart()
    size = form.length(10_000)
    with anyio.fail_after(TIMEOUT * 30):
        response = await client.post(
            "/api/v1/files",
            content=stall_after(form.head + b"x" * 1024),
            headers=form.headers(size, **user_headers),
        )
    assert_408(response)
    assert await stored_objects(storage_dir) == [], "no file, no .part left behind"
    assert await file_rows(app) == 0


async def test_a_stalled_json_body_is_408(client: AsyncClient) -> None:
    with anyio.fail_after(TIMEOUT * 30):
        response = await client.post(
            "/api/v1/users",
            content=stall_after(b'{"email": "slow@example.com", '),
            headers={"Content-Type": "application/json", "Content-Length": "200"},
        )
    assert_408(response)


async def test_a_slow_body_that_keeps_arriving_is_not_cut(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    """The deadline is per silence, not for the whole body: a slow but steady client gets
    through."""
    form = multipart()
    content = b"y" * 4096

    async def trickle() -> AsyncIterator[bytes]:
        yield form.head
        for start in range(0, len(content), 1024):
            await anyio.sleep(TIMEOUT / 8)
            yield content[start : start + 1024]
        yield form.tail

    response = await client.post(
        "/api/v1/files",
        content=trickle(),
        headers=form.headers(form.length(len(content)), **user_headers),
    )
    assert response.status_code == 201, response.text
    assert response.json()["size"] == len(content)
