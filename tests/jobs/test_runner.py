"""The job runner, on both backends: a job runs once, retries with backoff, respects its time
limit, survives its worker's death and the process's shutdown, and is handed off only after its
transaction committed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import insert, select

from app.core.db import utcnow
from app.core.settings import Settings
from app.jobs import recovery
from app.jobs.models import Job
from app.jobs.queue import enqueue
from app.jobs.runner import JobRunner
from tests.jobs.conftest import (
    Enqueue,
    JobRow,
    WaitFor,
    another_app,
    enqueue_in,
    read_job,
    wait_until,
)
from tests.jobs.kinds import CALLS


def calls(kind: str) -> list[int]:
    return [attempt for name, attempt in CALLS if name == kind]


async def test_a_job_runs_once_and_records_its_result(
    enqueue_job: Enqueue, wait_for: WaitFor
) -> None:
    job_id = await enqueue_job("tests.echo", value={"n": 1})
    job = await wait_for(job_id)
    assert job.status == "succeeded", job.error
    assert job.result == {"echo": {"n": 1}, "attempt": 1}
    assert (job.attempts, job.progress, job.error) == (1, 100, None)
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.created_at <= job.started_at <= job.finished_at
    assert job.lease_until is None
    assert calls("tests.echo") == [1]


async def test_the_hand_off_waits_for_the_commit(
    app: Any, application: FastAPI, wait_for: WaitFor
) -> None:
    async with application.state.db.sessionmaker() as session:
        job = await enqueue(session, kind="tests.echo", args={"value": "later"})
        await session.flush()
        await asyncio.sleep(0.3)  # were it handed off now, it would run (and find no row)
        assert calls("tests.echo") == []
        await session.commit()
    assert (await wait_for(job.id)).status == "succeeded"
    assert calls("tests.echo") == [1]


async def test_a_rolled_back_enqueue_is_dropped(
    app: Any, application: FastAPI, enqueue_job: Enqueue, wait_for: WaitFor, job_row: JobRow
) -> None:
    async with application.state.db.sessionmaker() as session:
        dropped = await enqueue(session, kind="tests.echo", args={"value": "never"})
        await session.flush()
        await session.rollback()
    # A job enqueued afterwards has run to the end: the dropped one would have run before it.
    after = await enqueue_job("tests.echo", value="after")
    assert (await wait_for(after)).status == "succeeded"
    await asyncio.sleep(0.2)
    assert await job_row(dropped.id) is None
    assert calls("tests.echo") == [1]


async def test_a_redelivered_message_never_runs_a_job_twice(
    runner: JobRunner, enqueue_job: Enqueue, wait_for: WaitFor
) -> None:
    job_id = await enqueue_job("tests.slow", seconds=0.3, steps=3)
    # Five more deliveries while it is queued or running, five more once it is done.
    await asyncio.gather(*(runner.send(job_id, "tests.slow") for _ in range(5)))
    job = await wait_for(job_id)
    await asyncio.gather(*(runner.send(job_id, "tests.slow") for _ in range(5)))
    await asyncio.sleep(0.3)
    assert job.status == "succeeded"
    assert job.attempts == 1
    assert calls("tests.slow") == [1]


async def test_a_retryable_failure_is_retried_with_backoff(
    enqueue_job: Enqueue, wait_for: WaitFor
) -> None:
    job_id = await enqueue_job("tests.flaky", fail_times=2)
    job = await wait_for(job_id)
    assert job.status == "succeeded"
    assert job.attempts == 3
    assert job.result == {"attempt": 3}
    assert calls("tests.flaky") == [1, 2, 3]


async def test_a_job_that_keeps_failing_fails_with_the_reason(
    enqueue_job: Enqueue, wait_for: WaitFor
) -> None:
    job_id = await enqueue_job("tests.flaky", fail_times=10)
    job = await wait_for(job_id)
    assert job.status == "failed"
    assert job.attempts == 3
    assert job.error == "attempt 3 of 3 failed: ConnectionError: refused on attempt 3"
    assert calls("tests.flaky") == [1, 2, 3]


async def test_job_failed_is_final_and_keeps_its_result(
    enqueue_job: Enqueue, wait_for: WaitFor
) -> None:
    job_id = await enqueue_job("tests.rejects", reason="3 rows rejected")
    job = await wait_for(job_id)
    assert (job.status, job.error, job.result, job.attempts) == (
        "failed",
        "3 rows rejected",
        {"rejected": 3},
        1,
    )
    assert calls("tests.rejects") == [1]


async def test_the_time_limit_cancels_an_attempt(enqueue_job: Enqueue, wait_for: WaitFor) -> None:
    job_id = await enqueue_job("tests.sleepy", seconds=30)
    job = await wait_for(job_id)
    assert job.status == "failed"
    assert job.error == "attempt 3 of 3 failed: time limit of 0.3 s exceeded"
    assert calls("tests.sleepy") == [1, 2, 3]


async def test_progress_is_persisted_while_running(enqueue_job: Enqueue, wait_for: WaitFor) -> None:
    job_id = await enqueue_job("tests.slow", seconds=2.0, steps=4)
    seen = await wait_for(job_id, until=lambda job: 0 < job.progress < 100)
    assert seen.status == "running"
    assert seen.lease_until is not None
    assert seen.lease_until > utcnow()
    assert (await wait_for(job_id)).progress == 100


async def _orphan(application: FastAPI, kind: str, max_attempts: int, **args: Any) -> uuid.UUID:
    """A row as a worker that died mid-job leaves it: running, its heartbeat long gone, and
    no message for it anywhere."""
    long_ago = utcnow() - timedelta(minutes=5)
    job_id = uuid.uuid4()
    row = {"id": job_id, "kind": kind, "args": args, "status": "running", "attempts": 1}
    row |= {"max_attempts": max_attempts, "progress": 40, "lease_until": long_ago}
    row |= {"run_after": long_ago, "kicked_at": long_ago, "created_at": long_ago}
    row |= {"started_at": long_ago, "updated_at": long_ago}
    async with application.state.db.sessionmaker() as session:
        await session.execute(insert(Job), [row])
        await session.commit()
    return job_id


async def test_a_job_whose_worker_died_runs_again(
    app: Any, application: FastAPI, wait_for: WaitFor
) -> None:
    job_id = await _orphan(application, "tests.echo", 5, value=1)
    done = await wait_for(job_id)
    assert done.status == "succeeded"
    assert done.attempts == 2
    assert calls("tests.echo") == [2]


async def test_a_non_retryable_job_whose_worker_died_fails_with_a_reason(
    app: Any, application: FastAPI, wait_for: WaitFor
) -> None:
    job_id = await _orphan(application, "tests.once", 1, seconds=0)
    done = await wait_for(job_id)
    assert done.status == "failed"
    assert done.error == "the worker running attempt 1 of 1 stopped answering; no attempts left"
    assert done.finished_at is not None
    assert calls("tests.once") == []


async def test_start_up_recovers_jobs_left_running(settings: Settings, cleanup_engine: Any) -> None:
    # Written before the app starts, as a process that died would have left them.
    now = utcnow()
    long_ago = now - timedelta(minutes=5)
    retryable, final = uuid.uuid4(), uuid.uuid4()
    common = {
        "status": "running",
        "progress": 40,
        "attempts": 1,
        "run_after": long_ago,
        "kicked_at": long_ago,
        "lease_until": long_ago,
        "created_at": long_ago,
        "started_at": long_ago,
        "updated_at": long_ago,
    }
    rows = [
        {**common, "id": retryable, "kind": "tests.echo", "max_attempts": 5, "args": {"value": 2}},
        {**common, "id": final, "kind": "tests.once", "max_attempts": 1, "args": {"seconds": 0}},
    ]
    async with cleanup_engine.begin() as conn:
        await conn.execute(insert(Job), rows)
    application = await another_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        again = await wait_until(application, retryable)
        failed = await wait_until(application, final)
    assert (again.status, again.attempts, again.result) == (
        "succeeded",
        2,
        {"echo": 2, "attempt": 2},
    )
    assert failed.status == "failed"
    assert "stopped answering" in (failed.error or "")
    assert calls("tests.echo") == [2]
    assert calls("tests.once") == []


async def test_cancelling_a_running_job_stops_it(
    app: Any, application: FastAPI, enqueue_job: Enqueue, wait_for: WaitFor, job_row: JobRow
) -> None:
    from app.jobs.service import cancel_job

    job_id = await enqueue_job("tests.slow", seconds=20, steps=200)
    await wait_for(job_id, until=lambda job: job.status == "running")
    async with application.state.db.sessionmaker() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        cancelled = await cancel_job(session, job)
    assert cancelled.status == "cancelled"
    # The worker notices at its next lease renewal (lease/5 = 0.2 s here) and stops.
    await asyncio.sleep(1.0)
    row = await job_row(job_id)
    assert row is not None
    assert row.status == "cancelled"
    progress = row.progress
    await asyncio.sleep(0.5)
    after = await job_row(job_id)
    assert after is not None
    assert after.progress == progress < 100


async def test_shutdown_gives_a_grace_period_then_queues_again(
    settings: Settings, tmp_path: Path
) -> None:
    """A job that ends during the grace period is recorded; one that outlasts it goes back to
    the queue. Which job is which does not depend on the machine's speed: the first waits for
    a gate that opens only once shutdown has begun, the second never ends by itself."""
    settings = settings.model_copy(update={"graceful_shutdown_seconds": 5})
    gate = tmp_path / "gate"
    first = await another_app(settings)
    async with LifespanManager(first, startup_timeout=30, shutdown_timeout=30):
        runner: JobRunner = first.state.job_runner
        quick = await enqueue_in(first, "tests.gate", path=str(gate))
        stuck = await enqueue_in(first, "tests.slow", seconds=300, steps=3000)
        await wait_until(first, stuck, until=lambda job: job.status == "running")
        await wait_until(first, quick, until=lambda job: job.status == "running")

        async def open_gate_once_stopping() -> None:
            while not runner.stopping:  # noqa: ASYNC110  (a flag, not an event, on the runner)
                await asyncio.sleep(0.01)
            await anyio.Path(gate).touch()

        opener = asyncio.create_task(open_gate_once_stopping())
    await opener
    second = await another_app(settings)
    async with LifespanManager(second, startup_timeout=30, shutdown_timeout=30):
        finished = await read_job(second, quick)
        put_back = await read_job(second, stuck)
        assert finished is not None
        assert finished.status == "succeeded"
        assert put_back is not None
        assert put_back.status in ("queued", "running")
        assert put_back.attempts in (0, 1)
        # The next process takes it up again, as a first attempt.
        resumed = await wait_until(
            second, stuck, until=lambda job: job.status == "running" and job.progress > 0
        )
        assert resumed.attempts == 1
    assert calls("tests.slow") == [1, 1]
    assert calls("tests.gate") == [1]


async def test_a_job_claimed_as_shutdown_begins_gets_the_grace_period_too(
    settings: Settings, tmp_path: Path
) -> None:
    """A job that was handed to the runner just before shutdown began, and claimed its row
    during the wait for the running ones, finishes within the grace period: it is not cancelled
    the moment the jobs that were running when the wait began are done. Its claim is held up
    by a lock on its row until shutdown has begun; the running job ends only once it runs."""
    settings = settings.model_copy(update={"graceful_shutdown_seconds": 10})
    gate = tmp_path / "gate"
    late = uuid.uuid4()
    first = await another_app(settings)
    async with LifespanManager(first, startup_timeout=30, shutdown_timeout=30):
        runner: JobRunner = first.state.job_runner
        running = await enqueue_in(first, "tests.gate", path=str(gate))
        await wait_until(first, running, until=lambda job: job.status == "running")
        async with first.state.db.engine.begin() as conn:
            row = {"id": late, "kind": "tests.slow", "args": {"seconds": 0.3, "steps": 3}}
            await conn.execute(insert(Job), [row])
        locked = anyio.Event()

        async def hold_its_row_until_shutdown_begins() -> None:
            async with first.state.db.engine.begin() as conn:
                await conn.execute(select(Job.id).where(Job.id == late).with_for_update())
                locked.set()
                while not runner.stopping:  # noqa: ASYNC110  (a flag, not an event)
                    await asyncio.sleep(0.01)
            while late not in runner.running:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await anyio.Path(gate).touch()

        holder = asyncio.create_task(hold_its_row_until_shutdown_begins())
        await locked.wait()
        claimer = asyncio.create_task(runner.run(late))
    await holder
    await claimer
    second = await another_app(settings)
    async with LifespanManager(second, startup_timeout=30, shutdown_timeout=30):
        finished = await read_job(second, late)
    assert finished is not None
    assert (finished.status, finished.attempts) == ("succeeded", 1)
    assert calls("tests.slow") == [1]


async def test_a_job_being_claimed_here_is_never_taken_for_dead(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However late the loop comes back to the task that claimed a job, this process's sweep
    does not take the job for dead. Under a busy machine's load it did: the claim committed,
    the loop came back to the claiming task only after the lease had run out, the sweep (not
    seeing the job as running here yet) queued it again, and the message it sent was dropped
    as "running here", so the job sat queued until the lost-hand-off sweep, minutes later."""
    application = await another_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        runner: JobRunner = application.state.job_runner
        job_id = uuid.uuid4()
        async with application.state.db.engine.begin() as conn:  # a row, and no hand-off
            await conn.execute(
                insert(Job), [{"id": job_id, "kind": "tests.echo", "args": {"value": 1}}]
            )
        claim = runner._claim
        claimed, resume = anyio.Event(), anyio.Event()

        async def claim_then_stall(claimed_id: uuid.UUID) -> Job | None:
            job = await claim(claimed_id)
            claimed.set()
            await resume.wait()  # the loop is elsewhere for longer than the lease
            return job

        monkeypatch.setattr(runner, "_claim", claim_then_stall)
        running = asyncio.create_task(runner.run(job_id))
        await claimed.wait()
        with anyio.fail_after(30):
            while True:  # until the lease has run out
                row = await read_job(application, job_id)
                assert row is not None
                if row.lease_until is not None and row.lease_until < utcnow():
                    break
                await asyncio.sleep(0.05)
        again = await recovery.sweep(
            application.state.db, requeue_after=120, running_here=set(runner.running)
        )
        assert again == []
        resume.set()
        await running
        job = await read_job(application, job_id)
    assert job is not None
    assert (job.status, job.attempts, job.error) == ("succeeded", 1, None)
