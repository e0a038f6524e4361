"""Upload benchmark: a 1 GiB file streamed to `POST /api/v1/files` (the service) versus the naive
endpoint of the seed, `data = await file.read()` on a FastAPI `UploadFile` (defined here, not in
the app). For each: throughput (MiB/s, client-side wall time of the request) and the server
process's resident memory (VmRSS sampled every 20 ms: baseline before, peak during).

    .venv/bin/python -m bench.uploads [--size-mib 1024]

Both servers run as their own uvicorn process on 127.0.0.1 with a temporary SQLite database and
storage folder; each is stopped (by pid) when its run ends. Each run is bounded (90 s).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, UploadFile

ROOT = Path(__file__).resolve().parent.parent
RUN_SECONDS = 90
PASSWORD = "correct horse battery"
SECRET_KEY = "bench-secret-" + "k" * 40
CHUNK = 256 * 1024


# --- the naive endpoint (the seed's), served by `--serve-naive` -----------------------------


def naive_app(storage: Path) -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    async def upload(file: UploadFile) -> dict[str, Any]:
        data = await file.read()  # noqa: FPP207 - the seed's naive endpoint, measured on purpose
        digest = hashlib.sha256(data).hexdigest()
        (storage / uuid.uuid4().hex).write_bytes(data)
        return {"size": len(data), "sha256": digest}

    return app


# --- processes and memory ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def sample_peak(pid: int, stop: asyncio.Event) -> int:
    peak = 0
    while not stop.is_set():
        peak = max(peak, rss(pid))
        await asyncio.sleep(0.02)
    return peak


async def start(argv: list[str], env: dict[str, str], url: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise SystemExit(f"server exited with {process.returncode}: {argv}")
            try:
                await client.get(url)
                return process
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    await stop(process)
    raise SystemExit(f"server not answering after 60 s: {argv}")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()


def multipart_parts(size: int) -> tuple[str, bytes, bytes]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return boundary, head, f"\r\n--{boundary}--\r\n".encode()


async def body(head: bytes, size: int, tail: bytes) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    yield head
    sent = 0
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece
    yield tail


async def measure(pid: int, url: str, size: int, headers: dict[str, str]) -> dict[str, Any]:
    boundary, head, tail = multipart_parts(size)
    baseline = rss(pid)
    stopped = asyncio.Event()
    sampler = asyncio.create_task(sample_peak(pid, stopped))
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=RUN_SECONDS) as client:
        response = await asyncio.wait_for(
            client.post(
                url,
                content=body(head, size, tail),
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + size + len(tail)),
                    **headers,
                },
            ),
            RUN_SECONDS,
        )
    elapsed = time.perf_counter() - started
    stopped.set()
    peak = await sampler
    response.raise_for_status()
    assert response.json()["size"] == size, response.text
    mib = size / 2**20
    return {
        "MiB": round(mib),
        "seconds": round(elapsed, 2),
        "MiB_per_s": round(mib / elapsed, 1),
        "rss_baseline_MiB": round(baseline / 2**20, 1),
        "rss_peak_MiB": round(peak / 2**20, 1),
        "rss_growth_MiB": round((peak - baseline) / 2**20, 1),
    }


async def run_service(size: int, work: Path) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))} | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'service.db'}",
        "STORAGE_DIR": str(work / "service-files"),
        "VAR_DIR": str(work / "var"),
        "SECRET_KEY": SECRET_KEY,
        "ENVIRONMENT": "production",
        # Production refuses the sandbox gateway; no scenario charges a card.
        "PAYMENT_GATEWAY": "http",
        "PAYMENT_GATEWAY_URL": "https://gateway.invalid/v1",
        "ARGON2_TIME_COST": "2",
        "ARGON2_MEMORY_KIB": "19456",
        "LOG_LEVEL": "WARNING",
        "MAX_UPLOAD_BYTES": str(size + 2**20),
    }
    argv = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = await start(argv, env, f"{base}/health/live")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            signed = await client.post(
                "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "Bench"}
            )
            signed.raise_for_status()
            token = await client.post(
                "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            # Warm-up: every code path once.
            boundary, head, tail = multipart_parts(1000)
            await client.post(
                "/api/v1/files",
                content=head + b"w" * 1000 + tail,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **headers},
            )
        return await measure(process.pid, f"{base}/api/v1/files", size, headers)
    finally:
        await stop(process)


async def run_naive(size: int, work: Path) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    storage = work / "naive-files"
    storage.mkdir()
    argv = [
        sys.executable, "-m", "bench.uploads", "--serve-naive", str(port), "--storage", str(storage)
    ]  # fmt: skip
    process = await start(argv, dict(os.environ), f"{base}/docs")
    try:
        boundary, head, tail = multipart_parts(1000)
        async with httpx.AsyncClient(timeout=30) as client:
            await client.post(
                f"{base}/upload",
                content=head + b"w" * 1000 + tail,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        return await measure(process.pid, f"{base}/upload", size, {})
    finally:
        await stop(process)


async def main(size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        work = Path(tmp)
        results = {
            "service (streamed)": await run_service(size, work),
            "naive (await file.read())": await run_naive(size, work),
        }
    print(json.dumps(results, indent=2))


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.uploads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="upload size (default 1024)")
    parser.add_argument("--serve-naive", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_naive:
        import uvicorn

        uvicorn.run(
            naive_app(args.storage), host="127.0.0.1", port=args.serve_naive, log_level="warning"
        )
        return
    asyncio.run(main(args.size_mib * 2**20))


if __name__ == "__main__":
    cli()
