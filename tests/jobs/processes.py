"""Real processes for the fault tests: `python -m app worker` and a throwaway redis-server.

Started with asyncio (non-blocking), their output collected by a task, and always killed by pid
in teardown, whatever the test did.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, text: str, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared; output:\n{self.output}")

    def kill(self) -> None:
        if self.process.returncode is None:
            os.kill(self.pid, signal.SIGKILL)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, seconds: float = 15.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            self.kill()
            return await self.process.wait()


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").rstrip())


@asynccontextmanager
async def started(*argv: str, env: dict[str, str]) -> AsyncIterator[Process]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    handle = Process(process)
    assert process.stdout is not None
    handle.reader = asyncio.create_task(_collect(process.stdout, handle.lines))
    try:
        yield handle
    finally:
        handle.kill()
        await process.wait()
        await handle.reader


def worker_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@asynccontextmanager
async def worker(
    database_url: str, redis_url: str, *extra: str, env: dict[str, str] | None = None
) -> AsyncIterator[Process]:
    argv = [
        sys.executable,
        "-m",
        "app",
        "worker",
        "--import",
        "tests.jobs.kinds",
        "--lease-seconds",
        "1",
        "--sweep-seconds",
        "0.2",
        "--grace-seconds",
        "2",
        *extra,
    ]
    environment = worker_env(database_url, redis_url) | (env or {})
    async with started(*argv, env=environment) as process:
        await process.wait_for_line("worker started")
        yield process


# Looked up once, at import: a PATH search is blocking file-system work.
REDIS_SERVER = shutil.which("redis-server")


def redis_server_binary() -> str | None:
    return REDIS_SERVER


class RedisServer:
    """A throwaway Redis on loopback (no persistence) that a test may stop and start again:
    never the shared one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        binary = redis_server_binary()
        assert binary is not None
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        process = await asyncio.create_subprocess_exec(
            *argv,
            env={"PATH": os.environ.get("PATH", "")},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        self.process = Process(process)
        self.process.reader = asyncio.create_task(_collect(process.stdout, self.process.lines))
        await self.process.wait_for_line("Ready to accept connections", seconds=10)

    async def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            await self.process.process.wait()
            if self.process.reader is not None:
                await self.process.reader
            self.process = None
