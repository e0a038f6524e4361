"""Faults, for real: a worker process SIGKILLed mid-job, and one stopped with SIGTERM.

These use a throwaway redis-server of their own (never the shared one), so they run wherever
the `redis-server` binary is installed; without it they skip (and fail under
TEST_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.settings import Settings
from tests.conftest import make_settings
from tests.jobs.conftest import FAST, build_app, enqueue_in, wait_until
from tests.jobs.processes import RedisServer, worker


@pytest.fixture
def settings(database_url: str, redis_server: RedisServer, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        redis_url=redis_server.url,
        email_outbox_dir=tmp_path / "outbox",
        storage_dir=tmp_path / "files",
        **FAST,
    )


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    # The web process only hands jobs off; worker processes (or, below, a worker inside the
    # test process) run them.
    return build_app(settings, runs_jobs=False)


async def test_a_job_killed_with_its_worker_runs_again_on_another(
    app: Any, application: FastAPI, settings: Settings, database_url: str
) -> None:
    assert settings.redis_url is not None
    async with worker(database_url, settings.redis_url) as first:
        job_id = await enqueue_in(application, "tests.slow", seconds=3, steps=30)
        await wait_until(
            application, job_id, until=lambda job: job.status == "running" and job.progress >= 10
        )
        first.kill()  # SIGKILL: no shutdown code runs, the message stays unacknowledged
        await first.process.wait()
    interrupted = await wait_until(application, job_id, until=lambda job: True)
    assert interrupted.status == "running"  # nobody knows yet
    async with worker(database_url, settings.redis_url) as second:
        done = await wait_until(application, job_id, seconds=30)
        output = second.output
    assert done.status == "succeeded", (done.error, output)
    assert done.attempts == 2
    assert done.result == {"attempt": 2, "pid": second.pid}
    assert "job's worker is gone" in output


async def test_a_worker_stops_gracefully_on_sigterm(
    app: Any, application: FastAPI, settings: Settings, database_url: str
) -> None:
    import signal

    assert settings.redis_url is not None
    async with worker(database_url, settings.redis_url) as process:
        quick = await enqueue_in(application, "tests.slow", seconds=0.6, steps=3)
        stuck = await enqueue_in(application, "tests.slow", seconds=60, steps=600)
        await wait_until(application, stuck, until=lambda job: job.status == "running")
        await wait_until(application, quick, until=lambda job: job.status == "running")
        assert await process.stop(signal.SIGTERM) == 0
    # The quick job finished within the grace period; the long one is queued again.
    assert (await wait_until(application, quick, until=lambda job: True)).status == "succeeded"
    put_back = await wait_until(application, stuck, until=lambda job: True)
    assert (put_back.status, put_back.attempts, put_back.lease_until) == ("queued", 0, None)
