"""A real server process takes an upload of several hundred MiB, generated on the fly by the
test, while the test samples the server's resident memory: it grows by less than a fixed bound
that does not depend on the size of the file."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import StartServer
from tests.files.conftest import FILES, multipart, pattern_chunks

pytestmark = pytest.mark.e2e

UPLOAD_BYTES = 400 * 1024 * 1024
RSS_GROWTH_BOUND = 50 * 1024 * 1024


async def rss_bytes(pid: int) -> int:
    status = await anyio.Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


class RssSampler:
    """Samples a process's VmRSS every 20 ms while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.samples = 0

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, await rss_bytes(self.pid))
            self.samples += 1
            await anyio.sleep(0.02)


async def test_a_400_mib_upload_does_not_grow_the_server_s_memory(
    start_server: StartServer, fresh_database: str, tmp_path: Path
) -> None:
    server = await start_server(
        fresh_database,
        MAX_UPLOAD_BYTES=str(2 * UPLOAD_BYTES),
        STORAGE_DIR=str(tmp_path / "files"),
    )
    async with server.client() as client:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        signup = await client.post(
            "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "Big"}
        )
        assert signup.status_code == 201, signup.text
        token = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        # Warm-up: a small upload brings in every code path, so the baseline includes them.
        body = multipart(filename="warm.bin")
        warm = await client.post(
            FILES, content=body.body(b"w" * 100_000), headers=body.headers(None, **headers)
        )
        assert warm.status_code == 201, warm.text
        baseline = await rss_bytes(server.pid)

        digest = hashlib.sha256()
        body = multipart(filename="big.bin", content_type="application/octet-stream")

        async def generate() -> AsyncIterator[bytes]:
            yield body.head
            for chunk in pattern_chunks(UPLOAD_BYTES, chunk=256 * 1024):
                digest.update(chunk)
                yield chunk
            yield body.tail

        sampler = RssSampler(server.pid)
        async with anyio.create_task_group() as group:
            group.start_soon(sampler.run)
            response = await client.post(
                FILES,
                content=generate(),
                headers=body.headers(body.length(UPLOAD_BYTES), **headers),
                timeout=120,
            )
            group.cancel_scope.cancel()

        assert response.status_code == 201, response.text
        assert response.json()["size"] == UPLOAD_BYTES
        assert response.json()["sha256"] == digest.hexdigest()
        assert sampler.samples > 10
        growth = sampler.peak - baseline
        assert growth < RSS_GROWTH_BOUND, (
            f"RSS grew by {growth / 2**20:.1f} MiB for a {UPLOAD_BYTES / 2**20:.0f} MiB upload "
            f"(baseline {baseline / 2**20:.1f} MiB, peak {sampler.peak / 2**20:.1f} MiB)"
        )
        print(
            f"\n{UPLOAD_BYTES / 2**20:.0f} MiB upload: baseline {baseline / 2**20:.1f} MiB, "
            f"peak {sampler.peak / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB"
        )
        stored = tmp_path / "files" / "files" / response.json()["id"]
        assert (await anyio.Path(stored).stat()).st_size == UPLOAD_BYTES


def leftovers(storage: Path) -> list[str]:
    return [str(p) for p in storage.rglob("*") if p.is_file()] if storage.exists() else []


async def test_an_upload_cut_off_half_way_leaves_nothing_behind(
    start_server: StartServer, fresh_database: str, tmp_path: Path
) -> None:
    storage = tmp_path / "files"
    server = await start_server(fresh_database, STORAGE_DIR=str(storage))
    async with server.client() as client:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        signup = await client.post(
            "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "Cut"}
        )
        assert signup.status_code == 201, signup.text
        token = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        size = 50 * 1024 * 1024
        body = multipart(filename="cut.bin")
        half_sent = anyio.Event()
        partial: list[str] = []

        async def generate() -> AsyncIterator[bytes]:
            yield body.head
            for index, chunk in enumerate(pattern_chunks(size)):
                if index == 200:  # ~12 MiB in: the bytes are on their way to storage
                    half_sent.set()
                    await anyio.sleep(30)
                yield chunk
            yield body.tail

        async with anyio.create_task_group() as group:

            async def send() -> None:
                await client.post(
                    FILES, content=generate(), headers=body.headers(body.length(size), **headers)
                )

            group.start_soon(send)
            await half_sent.wait()
            await anyio.sleep(0.5)
            partial.extend(await anyio.to_thread.run_sync(leftovers, storage))
            group.cancel_scope.cancel()  # the client goes away mid-upload

    assert partial, "no partial file while the upload was streaming"
    assert all(name.endswith(".part") for name in partial), partial

    # The server notices the disconnect and deletes the partial file.
    remaining = partial
    for _ in range(100):
        remaining = await anyio.to_thread.run_sync(leftovers, storage)
        if not remaining:
            break
        await anyio.sleep(0.1)
    assert remaining == []
    async with server.client() as client:
        listing = await client.get(FILES + "/" + str(uuid.uuid4()), headers=headers)
        assert listing.status_code == 404  # the server is still serving
    assert "Traceback" not in server.log
