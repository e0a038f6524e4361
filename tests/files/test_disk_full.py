"""A disk that fills during an upload: a clean 507 problem, no partial file, no row, and the
next upload that fits is stored (the space the failed one took is given back).

The storage folder is a 256 KiB tmpfs mounted by the test, so the disk really fills: the write
fails with ENOSPC as it would on a full volume. Mounting needs root (as in CI)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.settings import Settings
from tests.conftest import make_settings
from tests.files.conftest import file_rows, multipart, pattern_chunks, stored_objects

DISK_BYTES = 256 * 1024


@pytest.fixture
async def storage_dir(tmp_path: Path) -> AsyncIterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting the small tmpfs that plays the full disk needs root")
    folder = tmp_path / "small-disk"
    await anyio.Path(folder).mkdir()
    await anyio.run_process(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", folder])
    try:
        yield folder
    finally:
        await anyio.run_process(["umount", folder])


@pytest.fixture
def settings(database_url: str, storage_dir: Path) -> Settings:
    return make_settings(database_url, storage_dir=storage_dir, max_upload_bytes=4 * DISK_BYTES)


async def test_a_disk_that_fills_during_an_upload_is_a_507_that_keeps_nothing(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    form = multipart(filename="big.bin")
    size = 2 * DISK_BYTES  # within MAX_UPLOAD_BYTES, beyond the disk
    body = form.body(b"".join(pattern_chunks(size)))
    response = await client.post(
        "/api/v1/files", content=body, headers=form.headers(len(body), **user_headers)
    )
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "insufficient_storage"
    assert await stored_objects(storage_dir) == [], "no partial file left on the full disk"
    assert await file_rows(app) == 0

    small = multipart(filename="small.txt")
    stored = await client.post(
        "/api/v1/files",
        content=small.body(b"fits"),
        headers=small.headers(small.length(4), **user_headers),
    )
    assert stored.status_code == 201, stored.text
    assert await file_rows(app) == 1
