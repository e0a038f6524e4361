"""The job tests run twice: on the embedded backend (in-process taskiq broker) and on the
distributed one (taskiq-redis stream broker against a real Redis, with a worker runner started
in the test process)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI

import tests.jobs.kinds  # noqa: F401  (registers the test job kinds)
from app.core.settings import Settings
from app.jobs.models import Job
from app.jobs.queue import enqueue
from app.jobs.runner import JobRunner
from app.main import create_app
from tests.conftest import REQUIRE_SERVICES, TEST_REDIS_URL, _redis_url_for_worker, make_settings
from tests.jobs.kinds import CALLS
from tests.jobs.processes import RedisServer, free_port, redis_server_binary

# Short heartbeats and sweeps, so a dead worker's job is recovered within a second or two.
FAST: dict[str, Any] = {
    "job_concurrency": 4,
    "job_lease_seconds": 1.0,
    "graceful_shutdown_seconds": 2,
    "job_recovery_seconds": 0.2,
}

FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture(params=["embedded", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "redis" and not TEST_REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("TEST_REDIS_URL is not set but TEST_REQUIRE_SERVICES=1")
        pytest.skip("the Redis backend needs TEST_REDIS_URL (make test-services)")
    return name


@pytest.fixture
def settings(database_url: str, backend: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        redis_url=_redis_url_for_worker() if backend == "redis" else None,
        email_outbox_dir=tmp_path / "outbox",
        storage_dir=tmp_path / "files",
        **FAST,
    )


def build_app(settings: Settings, *, runs_jobs: bool = True) -> FastAPI:
    # With Redis, the test app consumes the stream too (a worker inside the test process),
    # unless the test brings worker processes of its own.
    return create_app(settings.model_copy(update={"jobs_in_web_process": runs_jobs}))


async def another_app(settings: Settings) -> FastAPI:
    """A second app (a restarted process): built in a worker thread, as construction does a
    few blocking file checks."""
    return await anyio.to_thread.run_sync(build_app, settings)


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    return build_app(settings)


@pytest.fixture(autouse=True)
def _forget_calls() -> None:
    CALLS.clear()


@pytest.fixture
def runner(app: Any, application: FastAPI) -> JobRunner:
    job_runner: JobRunner = application.state.job_runner
    return job_runner


JobRow = Callable[[uuid.UUID | str], Awaitable[Job | None]]
WaitFor = Callable[..., Awaitable[Job]]


async def read_job(application: FastAPI, job_id: uuid.UUID | str) -> Job | None:
    async with application.state.db.sessionmaker() as session:
        job: Job | None = await session.get(Job, uuid.UUID(str(job_id)))
        return job


async def wait_until(
    application: FastAPI,
    job_id: uuid.UUID | str,
    until: Callable[[Job], bool] = lambda job: job.status in FINISHED,
    seconds: float = 15.0,
) -> Job:
    """Poll the job's row until `until(job)` holds (default: finished); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    job = None
    while time.monotonic() < deadline:
        job = await read_job(application, job_id)
        if job is not None and until(job):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there; last seen: {_describe(job)}")


@pytest.fixture
def job_row(app: Any, application: FastAPI) -> JobRow:
    async def _job_row(job_id: uuid.UUID | str) -> Job | None:
        return await read_job(application, job_id)

    return _job_row


@pytest.fixture
def wait_for(app: Any, application: FastAPI) -> WaitFor:
    async def _wait_for(job_id: uuid.UUID | str, **kwargs: Any) -> Job:
        return await wait_until(application, job_id, **kwargs)

    return _wait_for


def _describe(job: Job | None) -> str:
    if job is None:
        return "no row"
    return f"status={job.status} attempts={job.attempts} error={job.error!r}"


Enqueue = Callable[..., Awaitable[uuid.UUID]]


async def enqueue_in(
    application: FastAPI, kind: str, user_id: int | None = None, **args: Any
) -> uuid.UUID:
    """Enqueue a job in a session of its own and commit, as a service would."""
    async with application.state.db.sessionmaker() as session:
        job = await enqueue(session, kind=kind, args=args, user_id=user_id)
        await session.commit()
        return job.id


@pytest.fixture
def enqueue_job(app: Any, application: FastAPI) -> Enqueue:
    async def _enqueue(kind: str, user_id: int | None = None, **args: Any) -> uuid.UUID:
        return await enqueue_in(application, kind, user_id, **args)

    return _enqueue


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    """A Redis of the test's own, which it may stop and start again (never the shared one)."""
    if redis_server_binary() is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is not installed but TEST_REQUIRE_SERVICES=1")
        pytest.skip("needs the redis-server binary (apt-get install redis-server)")
    server = RedisServer(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
