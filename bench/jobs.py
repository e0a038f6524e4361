"""Job queue benchmark: jobs per second for a trivial job through each backend, and the latency
from enqueue to `succeeded` (median and p99) with 1 and 2 worker processes.

    .venv/bin/python -m bench.jobs --backend embedded
    .venv/bin/python -m bench.jobs --backend redis --workers 2 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_jobs

Two phases per run, each bounded in time:

- throughput: `--burst` jobs enqueued at once (in transactions of 100), timed until every one
  is `succeeded`;
- latency: jobs enqueued one per transaction at `--rate` per second for `--seconds`, each job's
  `finished_at - created_at` (both written by the same host's clock) collected.

`embedded` runs the jobs in this process (no REDIS_URL: taskiq's in-memory broker), as the web
process does; `--workers` does not apply. `redis` starts a throwaway `redis-server` on a free
loopback port (or uses `--redis-url`), hands jobs off from this process as the web process does
(`role="client"`), and runs them in `--workers` `python -m app worker` processes, stopped by pid
at the end. The database is a fresh SQLite file (default) or a fresh PostgreSQL database named by
`--database-url` (created, migrated, dropped at the end). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from app.jobs.queue import JobContext, job_kind

NOOP = "bench.noop"
ROOT = Path(__file__).resolve().parent.parent


@job_kind(NOOP, retryable=False, time_limit=30)
async def noop(ctx: JobContext) -> None:
    """The trivial job: claim, run nothing, record."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_for_line(process: asyncio.subprocess.Process, text: str, seconds: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(process.stdout.readline(), deadline - time.monotonic())
        if not line:
            raise RuntimeError(f"process exited before printing {text!r}")
        if text in line.decode(errors="replace"):
            return
    raise RuntimeError(f"{text!r} not printed within {seconds} s")


async def _drain(process: asyncio.subprocess.Process, log: Path | None) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        if log is not None:
            await asyncio.to_thread(_append, log, line)


def _append(path: Path, line: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(line)


@contextlib.asynccontextmanager
async def _process(
    argv: list[str], env: dict[str, str], ready: str, log: Path | None = None
) -> AsyncIterator[int]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    drain: asyncio.Task[None] | None = None
    try:
        await _wait_for_line(process, ready, 30)
        drain = asyncio.create_task(_drain(process, log))
        yield process.pid
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            await drain


@contextlib.asynccontextmanager
async def _redis(url: str | None) -> AsyncIterator[str]:
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH: install it or pass --redis-url")
    port = _free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    env = {"PATH": os.environ.get("PATH", "")}
    async with _process(argv, env, "Ready to accept connections"):
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.asynccontextmanager
async def _database(url: str | None) -> AsyncIterator[str]:
    from app.migrate import upgrade

    if url is None:
        with tempfile.TemporaryDirectory(prefix="bench-jobs-") as directory:
            sqlite = f"sqlite+aiosqlite:///{directory}/bench.db"
            await asyncio.to_thread(upgrade, sqlite)
            yield sqlite
        return
    from bench.database import drop, recreate

    await recreate(url)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await drop(url)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    from sqlalchemy import func, select

    from app.core.db import open_database
    from app.core.email import open_mailer
    from app.core.observability import configure_logging
    from app.core.settings import Settings
    from app.jobs.models import Job
    from app.jobs.queue import enqueue
    from app.jobs.runner import JobRunner

    configure_logging(fmt="json", level="WARNING")

    deadline = time.monotonic() + args.budget
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(_database(args.database_url))
        redis_url = None
        if args.backend == "redis":
            redis_url = await stack.enter_async_context(_redis(args.redis_url))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-jobs-files-")))
        settings = Settings(
            _env_file=None,
            environment="test",
            database_url=database_url,
            redis_url=redis_url,
            log_level="WARNING",
            log_format="json",
            storage_dir=tmp / "files",
            email_outbox_dir=tmp / "outbox",
            job_concurrency=args.concurrency,
        )
        if redis_url is not None:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", str(ROOT)),
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "ENVIRONMENT": "test",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": args.worker_log_level,
                "PYTHONUNBUFFERED": "1",
            }
            argv = [sys.executable, "-m", "app", "worker", "--import", "bench.jobs"]
            argv += ["--concurrency", str(args.concurrency)]
            for _ in range(args.workers):
                await stack.enter_async_context(
                    _process(argv, env, "worker started", args.worker_log)
                )

        db = await open_database(settings)
        stack.push_async_callback(db.dispose)
        http = await stack.enter_async_context(httpx.AsyncClient())
        runner = JobRunner(
            settings=settings,
            db=db,
            http=http,
            mailer=open_mailer(settings),
            runs_jobs=redis_url is None,
        )
        await runner.start()
        stack.push_async_callback(runner.stop)

        # The database is the benchmark's own: every succeeded job is one of ours.
        async def count_succeeded() -> int:
            async with db.sessionmaker() as session:
                found = await session.scalar(
                    select(func.count()).select_from(Job).where(Job.status == "succeeded")
                )
                await session.commit()
                return int(found or 0)

        async def wait_all(total: int) -> bool:
            while time.monotonic() < deadline:
                if await count_succeeded() >= total:
                    return True
                await asyncio.sleep(0.05)
            return False

        # Warm-up: connections, compiled statements, the stream and its consumer group.
        warm: list[uuid.UUID] = []
        async with db.sessionmaker() as session:
            for _ in range(10):
                warm.append((await enqueue(session, kind=NOOP, args={})).id)
            await session.commit()
        if not await wait_all(len(warm)):
            raise SystemExit("warm-up jobs did not finish: is a worker running?")

        # Throughput.
        burst: list[uuid.UUID] = []
        started = time.perf_counter()
        for first in range(0, args.burst, 100):
            async with db.sessionmaker() as session:
                for _ in range(min(100, args.burst - first)):
                    burst.append((await enqueue(session, kind=NOOP, args={})).id)
                await session.commit()
        finished = await wait_all(len(warm) + len(burst))
        elapsed = time.perf_counter() - started
        done = len(burst) if finished else await count_succeeded() - len(warm)

        # Latency, at a steady rate well below the throughput.
        paced: list[uuid.UUID] = []
        interval = 1.0 / args.rate
        next_at = time.perf_counter()
        end_at = next_at + args.seconds
        while time.perf_counter() < end_at and time.monotonic() < deadline:
            async with db.sessionmaker() as session:
                paced.append((await enqueue(session, kind=NOOP, args={})).id)
                await session.commit()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await wait_all(len(warm) + len(burst) + len(paced))
        async with db.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Job.created_at, Job.finished_at).where(
                        Job.id.in_(paced), Job.status == "succeeded"
                    )
                )
            ).all()
            await session.commit()
        latencies = [(f - c).total_seconds() * 1000 for c, f in rows if f is not None]

    return {
        "backend": args.backend,
        "database": "postgresql" if args.database_url else "sqlite",
        "worker_processes": args.workers if args.backend == "redis" else "in-process",
        "concurrency": args.concurrency,
        "burst_jobs": args.burst,
        "burst_completed": done,
        "jobs_per_second": round(done / elapsed, 1),
        "latency_jobs": len(latencies),
        "latency_of": len(paced),
        "rate_per_second": args.rate,
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p99": round(_percentile(latencies, 0.99), 1) if latencies else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backend", choices=["embedded", "redis"], default="embedded")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes to start (redis only; 0: bring your own, with --redis-url)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once per process")
    parser.add_argument("--burst", type=int, default=1000, help="jobs in the throughput phase")
    parser.add_argument("--rate", type=float, default=20.0, help="jobs/s in the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--budget", type=float, default=40.0, help="hard cap on both phases together (s)"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL whose database is created and dropped (default: SQLite temp file)",
    )
    parser.add_argument("--redis-url", help="use this Redis instead of a throwaway one")
    parser.add_argument("--worker-log", type=Path, help="append the workers' output to this file")
    parser.add_argument("--worker-log-level", default="INFO", help="the workers' LOG_LEVEL")
    args = parser.parse_args(argv)
    if args.workers < 0 or args.concurrency < 1 or args.burst < 1 or args.rate <= 0:
        parser.error("--workers, --concurrency, --burst and --rate must be positive")
    print(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
