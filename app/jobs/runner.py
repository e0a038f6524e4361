"""Running jobs: claim the row, run the job's function, record the outcome on the row.

taskiq delivers a job's id (app.jobs.broker); the row decides who runs it. A claim is a
conditional UPDATE (`WHERE status = 'queued'`, or a running job whose worker's heartbeat ran
out), so a message delivered twice never runs a job twice, and every later write is fenced by
the attempt number, so a worker whose job was cancelled or taken over writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import httpx
import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import SQLAlchemyError
from taskiq import Context, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from app.core.db import Database, utcnow
from app.core.email import Mailer
from app.core.settings import Settings
from app.jobs import recovery
from app.jobs.broker import TASK_NAME, RetryLater, labels, make_broker
from app.jobs.models import FAILED, MAX_ERROR_LENGTH, QUEUED, RUNNING, SUCCEEDED, Job
from app.jobs.queue import (
    JobContext,
    JobFailed,
    JobKind,
    get_job_kind,
    register_runner,
    unregister_runner,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine

    from fastapi import FastAPI

log = structlog.get_logger("app.jobs")

# Broker start-up and shutdown, and the housekeeping loops' last round: bounded, so a Redis
# that never answers holds up neither the service's start nor its exit.
LIFECYCLE_TIMEOUT_SECONDS = 2.0
PROGRESS_INTERVAL_SECONDS = 0.5  # progress is written at most this often (and always at 100)


@dataclass
class JobRunner:
    """Hands jobs to the broker (every process) and runs them (`runs_jobs`: the web process
    without Redis, `python -m app worker` with it)."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    mailer: Mailer
    runs_jobs: bool
    storage: Any = None
    metrics_registry: CollectorRegistry | None = None
    running: dict[uuid.UUID, asyncio.Task[Any]] = field(default_factory=dict)
    unsent: dict[uuid.UUID, str] = field(default_factory=dict)  # the outbox, see recovery
    queue_down: bool = False  # the broker could not be reached at the last hand-off
    stopping: bool = False

    def __post_init__(self) -> None:
        self.broker = make_broker(self.settings)
        self.broker.state.job_runner = self
        self._task: Any = self.broker.register_task(run_job, task_name=TASK_NAME)
        self._slots = asyncio.Semaphore(self.settings.job_concurrency)
        self._stop = asyncio.Event()
        self._loops: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        try:
            async with asyncio.timeout(LIFECYCLE_TIMEOUT_SECONDS):
                await self.broker.startup()
        except Exception as exc:  # Redis down: serve anyway, recovery hands off later
            log.warning("job broker start-up failed", error=repr(exc))
        register_runner(self.db.engine, self)
        self._spawn(recovery.recover_forever(self))
        if self.runs_jobs and self.settings.redis_url:
            self._spawn(self._consume())

    async def stop(self) -> None:
        """Stop taking jobs, give running ones the grace period, put the rest back to queued."""
        self.stopping = True
        unregister_runner(self.db.engine, self)
        self._stop.set()
        if self.running:
            log.info("waiting for running jobs", count=len(self.running))
        # Jobs whose claim was under way when `stopping` was set start during the wait: they
        # get what is left of the grace period too, instead of being cancelled at once.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.graceful_shutdown_seconds
        while self.running and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(list(self.running.values()), timeout=remaining)
        leftovers = list(self.running.values())
        for task in leftovers:
            task.cancel()  # each puts its job back to queued, that attempt not counted
        if leftovers:
            log.warning("running jobs cancelled at shutdown, queued again", count=len(leftovers))
            await asyncio.gather(*leftovers, return_exceptions=True)
        if self._loops:
            await asyncio.wait(self._loops, timeout=LIFECYCLE_TIMEOUT_SECONDS)
        for task in self._loops:
            task.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(LIFECYCLE_TIMEOUT_SECONDS):
                await self.broker.shutdown()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._loops.add(task)
        task.add_done_callback(self._loops.discard)

    async def pause(self, seconds: float) -> bool:
        """Sleep `seconds`, less if the runner stops meanwhile; False once it is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        return not self._stop.is_set()

    # -- hand-off ----------------------------------------------------------------------------

    def hand_off(self, jobs: list[tuple[uuid.UUID, str]]) -> None:
        """After the commit (a synchronous SQLAlchemy hook): send in a task of its own. While
        the broker is known to be down, straight to the outbox that recovery empties."""
        if self.queue_down or self.stopping:
            self.unsent.update(jobs)
        else:
            self._spawn(recovery.send(self, jobs))

    async def send(self, job_id: uuid.UUID, kind: str) -> None:
        """Hand one job to the broker; raises when the broker cannot be reached."""
        kicker = self._task.kicker().with_labels(**labels(get_job_kind(kind)))
        await kicker.kiq(str(job_id))

    # -- consuming (with Redis) ----------------------------------------------------------------

    async def _consume(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            receiver = Receiver(
                broker=self.broker,
                run_startup=False,
                max_async_tasks=self.settings.job_concurrency,
                # Acknowledged once the outcome is recorded: a worker killed mid-job leaves the
                # message pending, for another worker to claim.
                ack_type=AcknowledgeType.WHEN_EXECUTED,
                propagate_exceptions=False,
            )
            try:
                await receiver.listen(self._stop)
                delay = 0.5
            except Exception as exc:
                log.warning("cannot read the job queue; retrying", error=repr(exc), in_s=delay)
                if not await self.pause(delay):
                    return
                delay = min(delay * 2, 10.0)
                # A Redis that came back empty lost the stream's consumer group: declare it again.
                with contextlib.suppress(Exception):
                    await self.broker.startup()

    # -- running one job -----------------------------------------------------------------------

    async def run(self, job_id: uuid.UUID) -> None:
        async with self._slots:
            if self.stopping or job_id in self.running:
                return
            # Running here from before the claim: once the claim commits, the sweep must see
            # this job as alive here, even if the loop is slow to come back to this task.
            self.running[job_id] = asyncio.current_task()  # type: ignore[assignment]
            try:
                try:
                    job = await self._claim(job_id)
                except SQLAlchemyError as exc:
                    raise RetryLater("could not claim the job") from exc
                if job is None:
                    return  # cancelled, finished, or running elsewhere
                error = await self._run(job)
            finally:
                self.running.pop(job_id, None)
        if error is not None:
            raise RetryLater(error)

    async def _claim(self, job_id: uuid.UUID) -> Job | None:
        now = utcnow()
        orphaned = and_(
            Job.status == RUNNING, Job.lease_until < now, Job.attempts < Job.max_attempts
        )
        async with self.db.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, or_(Job.status == QUEUED, orphaned))
                .values(
                    status=RUNNING,
                    attempts=Job.attempts + 1,
                    progress=0,
                    started_at=now,
                    lease_until=now + timedelta(seconds=self.settings.job_lease_seconds),
                    updated_at=now,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                await session.rollback()
                return None
            job = await session.get(Job, job_id)
            await session.commit()
            return job

    async def _run(self, job: Job) -> str | None:
        """Run one attempt, renewing its heartbeat; returns the error when it is to be retried."""
        attempt = job.attempts
        ctx = JobContext(
            job_id=job.id,
            user_id=job.user_id,
            attempt=attempt,
            kind=job.kind,
            settings=self.settings,
            http=self.http,
            mailer=self.mailer,
            sessionmaker=self.db.sessionmaker,
            _progress=self._progress_writer(job.id, attempt),
            _storage=self.storage,
        )
        bound = log.bind(job_id=str(job.id), kind=job.kind, attempt=attempt)
        # The attempt runs in a task of its own, so that losing the row (the job was cancelled
        # or taken over) can cancel it while this one keeps the heartbeat.
        body = asyncio.get_running_loop().create_task(
            self._attempt(get_job_kind(job.kind), ctx, job)
        )
        try:
            while not (await asyncio.wait({body}, timeout=self.settings.job_lease_seconds / 5))[0]:
                lease = utcnow() + timedelta(seconds=self.settings.job_lease_seconds)
                if not await self._write(job.id, attempt, quiet=True, lease_until=lease):
                    body.cancel()
                    await asyncio.gather(body, return_exceptions=True)
                    bound.warning("job taken away while running (cancelled or taken over)")
                    await self._discard_file(ctx)
                    return None
        except asyncio.CancelledError:  # shutdown after the grace period: back to the queue
            body.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(body, return_exceptions=True)
                await self._write(job.id, attempt, **recovery.put_back_values(attempt))
                await self._discard_file(ctx)
            raise
        values, retry = body.result()
        if values.get("status") == SUCCEEDED:
            values["result_key"] = ctx.result_key
        if not await self._write(job.id, attempt, lease_until=None, **values):
            bound.warning("job outcome not recorded: it was cancelled meanwhile")
            retry = False
        if values.get("status") != SUCCEEDED:
            await self._discard_file(ctx)
        bound.info("job attempt over", status=values["status"], error=values.get("error"))
        return values["error"] if retry else None

    async def _attempt(
        self, spec: JobKind | None, ctx: JobContext, job: Job
    ) -> tuple[dict[str, Any], bool]:
        """The outcome as the values to write on the row, and whether to retry."""
        if spec is None:
            return _final(f"unknown job kind {job.kind!r}"), False
        try:
            spec.signature.bind(ctx, **job.args)
        except TypeError:
            return _final("the job's arguments do not fit its kind"), False
        try:
            async with asyncio.timeout(spec.time_limit) as limit:
                value = await spec.func(ctx, **job.args)
        except JobFailed as exc:
            return _final(exc.message[:MAX_ERROR_LENGTH], exc.result), False
        except Exception as exc:
            if limit.expired():
                reason = f"time limit of {spec.time_limit:g} s exceeded"
            else:
                log.exception("job raised", job_id=str(job.id), kind=job.kind)
                reason = _describe(exc)
            error = f"attempt {ctx.attempt} of {spec.max_attempts} failed: {reason}"
            if spec.retryable and ctx.attempt < spec.max_attempts:
                # Queued again; taskiq's retry middleware sends it after the back-off.
                now = utcnow()
                return {"status": QUEUED, "error": error, "run_after": now, "kicked_at": now}, True
            return _final(error), False
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            return _final("the job returned a result that is not JSON"), False
        done = {"status": SUCCEEDED, "progress": 100, "result": value, "error": None}
        return done | {"finished_at": utcnow()}, False

    async def _write(
        self, job_id: uuid.UUID, attempt: int, quiet: bool = False, **values: Any
    ) -> bool:
        """Update this attempt's row, if it is still this attempt's: the fence."""
        try:
            async with self.db.sessionmaker() as session:
                result = await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == RUNNING, Job.attempts == attempt)
                    .values(updated_at=utcnow(), **values)
                )
                await session.commit()
        except SQLAlchemyError:
            # A database hiccup is not a lost job: the heartbeat tries again, and a row left
            # running is recovered once its heartbeat runs out.
            log.warning("could not write a job's row", job_id=str(job_id), exc_info=not quiet)
            return quiet
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _progress_writer(self, job_id: uuid.UUID, attempt: int) -> Any:
        last = (-1, 0.0)

        async def write(percent: int) -> None:
            nonlocal last
            now = time.monotonic()
            if percent == last[0] or (percent < 100 and now - last[1] < PROGRESS_INTERVAL_SECONDS):
                return
            last = (percent, now)
            await self._write(job_id, attempt, quiet=True, progress=percent)

        return write

    async def _discard_file(self, ctx: JobContext) -> None:
        if ctx.result_key is not None:
            with contextlib.suppress(Exception):
                await ctx.storage.delete(ctx.result_key)


async def run_job(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """The one taskiq task: its message is a job id. Module-level (taskiq re-imports registered
    functions from their module); it finds its runner on the broker that delivered it."""
    runner: JobRunner = context.broker.state.job_runner
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        log.warning("message with an invalid job id dropped", job_id=job_id)
        return
    await runner.run(parsed)


def _final(error: str, result: Any = None) -> dict[str, Any]:
    return {"status": FAILED, "error": error, "result": result, "finished_at": utcnow()}


def _describe(exc: BaseException) -> str:
    # SQL and driver messages stay in the log; other messages are short and useful.
    if isinstance(exc, SQLAlchemyError):
        return type(exc).__name__
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextlib.asynccontextmanager
async def run_jobs(app: FastAPI) -> AsyncIterator[JobRunner]:
    """The lifespan's job runner: it runs jobs in the web process without Redis (or with
    `JOBS_IN_WEB_PROCESS`), and only hands them to Redis otherwise."""
    state = app.state
    settings: Settings = state.settings
    runner = JobRunner(
        settings=settings,
        db=state.db,
        http=state.http,
        mailer=state.mailer,
        runs_jobs=not settings.redis_url or settings.jobs_in_web_process,
        storage=state.storage,
        metrics_registry=state.metrics.registry,
    )
    await runner.start()
    state.job_runner = runner
    try:
        yield runner
    finally:
        await runner.stop()
