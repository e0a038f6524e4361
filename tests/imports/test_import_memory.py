"""A real server process imports a CSV of one million rows, generated on the fly by the test,
while the test samples the server's resident memory: it grows by less than a fixed bound that
does not depend on the number of rows. The job runs in the server process (embedded jobs), so
the process sampled is the one that parses and inserts."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import StartServer
from tests.files.conftest import multipart
from tests.files.test_upload_memory import RssSampler, rss_bytes
from tests.imports.conftest import IMPORTS

pytestmark = pytest.mark.e2e

ROWS = 1_000_000
RSS_GROWTH_BOUND = 50 * 1024 * 1024
DEADLINE_SECONDS = 240


def csv_chunks(rows: int, per_chunk: int = 5000) -> AsyncIterator[bytes]:
    async def generate() -> AsyncIterator[bytes]:
        yield b"email,name,age,balance\r\n"
        for start in range(0, rows, per_chunk):
            yield "".join(
                f"user{i:07d}@example.com,User {i},{i % 100},"
                f"{f'{i % 1000 + 1}.{i % 100:02d}' if i % 10 == 0 else ''}\r\n"
                for i in range(start, min(rows, start + per_chunk))
            ).encode()

    return generate()


async def csv_size(rows: int) -> int:
    total = 0
    async for chunk in csv_chunks(rows):
        total += len(chunk)
    return total


async def superuser_headers(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    token = await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def import_and_wait(
    client: httpx.AsyncClient, headers: dict[str, str], rows: int
) -> dict[str, object]:
    body = multipart(filename="users.csv", content_type="text/csv")
    size = await csv_size(rows)

    async def content() -> AsyncIterator[bytes]:
        yield body.head
        async for chunk in csv_chunks(rows):
            yield chunk
        yield body.tail

    response = await client.post(
        IMPORTS,
        params={"on_error": "skip"},
        content=content(),
        headers=body.headers(body.length(size), **headers),
    )
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"import not done in {DEADLINE_SECONDS} s: {job}"
        await anyio.sleep(0.5)
        job = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
    return dict(job)


async def test_a_million_row_import_runs_in_constant_memory(
    start_server: StartServer, fresh_database: str, tmp_path: Path
) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    server = await start_server(
        fresh_database,
        REDIS_URL="",  # embedded jobs: the import runs in the process we sample
        STORAGE_DIR=str(tmp_path / "files"),
        FIRST_SUPERUSER_EMAIL=email,
        FIRST_SUPERUSER_PASSWORD=PASSWORD,
    )
    async with server.client() as client:
        headers = await superuser_headers(client, email)
        warm = await import_and_wait(client, headers, 3000)  # every code path, once
        assert warm["status"] == "succeeded", warm
        baseline = await rss_bytes(server.pid)

        sampler = RssSampler(server.pid)
        async with anyio.create_task_group() as group:
            group.start_soon(sampler.run)
            # New emails: the warm-up's 3000 come back as duplicates, so skip them.
            job = await import_and_wait(client, headers, ROWS)
            group.cancel_scope.cancel()

    assert job["status"] == "succeeded", (job, server.log[-3000:])
    result = job["result"]
    assert isinstance(result, dict)
    assert result["imported"] == ROWS - 3000
    assert result["rejected"] == 3000
    growth = sampler.peak - baseline
    assert growth < RSS_GROWTH_BOUND, (
        f"RSS grew by {growth / 2**20:.1f} MiB importing {ROWS} rows "
        f"(baseline {baseline / 2**20:.1f} MiB, peak {sampler.peak / 2**20:.1f} MiB)"
    )
    print(
        f"\n{ROWS} rows: baseline {baseline / 2**20:.1f} MiB, peak {sampler.peak / 2**20:.1f} MiB,"
        f" growth {growth / 2**20:.1f} MiB"
    )
