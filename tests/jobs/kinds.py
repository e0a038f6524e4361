"""Job kinds used by the job tests. Importable by a worker process too:
`python -m app worker --import tests.jobs.kinds`."""

from __future__ import annotations

import os
from typing import Any

import anyio

from app.jobs.queue import JobContext, JobFailed, job_kind

# What ran, per process: the tests that run jobs in-process read it.
CALLS: list[tuple[str, int]] = []


@job_kind("tests.echo", time_limit=30)
async def echo(ctx: JobContext, *, value: Any) -> dict[str, Any]:
    CALLS.append(("tests.echo", ctx.attempt))
    return {"echo": value, "attempt": ctx.attempt}


@job_kind("tests.flaky", retryable=True, max_attempts=3, retry_delay=0.05, time_limit=30)
async def flaky(ctx: JobContext, *, fail_times: int) -> dict[str, Any]:
    CALLS.append(("tests.flaky", ctx.attempt))
    if ctx.attempt <= fail_times:
        raise ConnectionError(f"refused on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


@job_kind("tests.rejects", retryable=True, max_attempts=3)
async def rejects(ctx: JobContext, *, reason: str) -> None:
    CALLS.append(("tests.rejects", ctx.attempt))
    raise JobFailed(reason, result={"rejected": 3})


@job_kind("tests.sleepy", retryable=True, max_attempts=3, time_limit=0.3, retry_delay=0.05)
async def sleepy(ctx: JobContext, *, seconds: float) -> None:
    CALLS.append(("tests.sleepy", ctx.attempt))
    await anyio.sleep(seconds)


@job_kind("tests.slow", retryable=True, max_attempts=3, retry_delay=0.05, time_limit=60)
async def slow(ctx: JobContext, *, seconds: float, steps: int = 10) -> dict[str, Any]:
    """Sleeps `seconds` in `steps`, reporting progress: long enough to be interrupted."""
    CALLS.append(("tests.slow", ctx.attempt))
    for step in range(steps):
        await anyio.sleep(seconds / steps)
        await ctx.set_progress((step + 1) * 100 // steps)
    return {"attempt": ctx.attempt, "pid": os.getpid()}


@job_kind("tests.once", retryable=False, time_limit=60)
async def once(ctx: JobContext, *, seconds: float) -> None:
    CALLS.append(("tests.once", ctx.attempt))
    await anyio.sleep(seconds)


@job_kind("tests.gate", time_limit=60)
async def gate(ctx: JobContext, *, path: str) -> None:
    """Ends once the file `path` exists: the test decides when, not the machine's speed."""
    CALLS.append(("tests.gate", ctx.attempt))
    while not await anyio.Path(path).exists():  # noqa: ASYNC110  (another process may open it)
        await anyio.sleep(0.02)
