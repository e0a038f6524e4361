"""The job runner: taskiq carries job ids, the `jobs` table decides who runs what.

Two backends, one code path:

- embedded (no REDIS_URL): taskiq's `InMemoryBroker`; jobs run in the web process, at most
  `concurrency` at a time, started and stopped by the lifespan.
- distributed (REDIS_URL): taskiq-redis's `RedisStreamBroker` (the one of its Redis brokers that
  acknowledges messages); the web process only hands jobs off, `python -m app worker` processes
  run them.

A message is only a job id. Whoever receives it claims the row with a conditional UPDATE
(`WHERE id = :id AND status = 'queued'`) and holds a lease on it, renewed while the job runs.
That makes the table, not the broker, the source of truth:

- a redelivered message (the stream broker re-delivers anything unacknowledged after
  `idle_timeout`, even a job that is still running elsewhere) finds the job not queued: dropped;
- a worker that died (SIGKILL, power loss) stops renewing its lease; the sweeper of any live
  runner re-queues the job (or fails it with a reason when no attempts are left);
- a queued job whose hand-off was lost (the process died between commit and hand-off, Redis was
  down, the stream was trimmed) is handed off again by the sweeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

import anyio
import httpx
import structlog
from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, true, update
from sqlalchemy.exc import SQLAlchemyError
from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from app.core.db import READ_ONLY, Database, utcnow
from app.core.email import Mailer
from app.core.jobs import (
    CANCELLED,
    FAILED,
    MAX_ERROR_LENGTH,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
    JobContext,
    JobFailed,
    JobKind,
    ensure_backend_available_error,
    get_job_kind,
    register_backend,
    registered_kinds,
    unregister_backend,
)
from app.core.settings import Settings

log = structlog.get_logger("app.jobs")

TASK_NAME = "app.jobs.run"
STREAM_NAME = "app:jobs"
CONSUMER_GROUP = "app-workers"
# A check that takes longer than this counts as "Redis is down" for enqueue.
REDIS_CHECK_TIMEOUT_SECONDS = 5.0
# Broker start-up and shutdown: bounded, so a Redis that never answers cannot hold up the
# service's start (and its readiness answers) or its exit.
BROKER_LIFECYCLE_TIMEOUT_SECONDS = 2.0
# At stop, the housekeeping loops get this long to finish their round before being cancelled.
LOOP_STOP_SECONDS = 2.0
# Progress is written at most this often (and always at 100).
PROGRESS_INTERVAL_SECONDS = 0.5
# Acknowledged messages are trimmed past this length (approximately). A message trimmed unread
# is not lost: its job is still queued in the table and the sweeper hands it off again.
STREAM_MAX_LENGTH = 100_000


@dataclass(frozen=True)
class RunnerConfig:
    # Jobs running at once in this process.
    concurrency: int = 8
    # A running job's lease; renewed every lease/5 s. A worker silent this long is dead.
    lease_seconds: float = 30.0
    # At shutdown, running jobs get this long to finish; then they are cancelled and put back
    # to `queued` (that attempt does not count).
    shutdown_grace_seconds: float = 10.0
    # How often the sweeper looks for dead workers' jobs and lost hand-offs.
    sweep_interval_seconds: float = 5.0
    # A queued, due job not handed off for this long is handed off again.
    requeue_after_seconds: float = 120.0
    max_retry_delay_seconds: float = 300.0


Role = Literal["embedded", "client", "worker"]


@dataclass
class _Outcome:
    status: Literal["succeeded", "failed", "retry"]
    result: Any = None
    error: str | None = None
    delay: float = 0.0


@dataclass
class JobRunner:
    """Hands jobs to the broker (every role) and runs them (`embedded` and `worker`)."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    mailer: Mailer
    broker: AsyncBroker
    role: Role
    config: RunnerConfig = field(default_factory=RunnerConfig)
    storage: Any = None
    # The app's Prometheus registry: when given, a `jobs{state}` gauge is kept up to date.
    metrics_registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self.broker.state.job_runner = self
        # Typed loosely: taskiq's overloads count the injected `context` as an argument.
        self._task: Any = self.broker.register_task(run_job, task_name=TASK_NAME)
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._executions: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._unkicked: set[uuid.UUID] = set()
        # Jobs running in this process right now: alive by definition, whatever their lease
        # says (on SQLite a long job's own write transaction can hold up its lease renewals).
        self._running: set[uuid.UUID] = set()
        self._stopping = False
        # Set by stop(): the housekeeping loops finish the round they are in and return, rather
        # than being cancelled in the middle of a database transaction.
        self._stop_event = asyncio.Event()
        self._loops: set[asyncio.Task[Any]] = set()
        self._started = False

    @property
    def runs_jobs(self) -> bool:
        return self.role != "client"

    @property
    def uses_redis(self) -> bool:
        return isinstance(self.broker, RedisStreamBroker)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            # Bounded: a Redis that accepts connections and never answers must not hold up the
            # service's start-up (and its health checks) forever.
            async with asyncio.timeout(BROKER_LIFECYCLE_TIMEOUT_SECONDS):
                await self.broker.startup()
        except Exception as exc:
            # Redis down at start-up: serve anyway (enqueue answers 503 until it is back).
            log.warning("job broker start-up failed", error=repr(exc))
        self._started = True
        register_backend(self.db.engine, self)
        self._spawn_loop(self._retry_hand_offs())
        if self.metrics_registry is not None:
            self._spawn_loop(self._count_jobs_forever(self.metrics_registry))
        if self.runs_jobs:
            if self.role == "embedded":
                # The in-process queue died with the last process: every queued job is handed
                # off again (a job already claimed elsewhere is simply not claimed twice). In
                # the background: a database that hangs must not hold up start-up.
                self._spawn(self._safely(self._kick_all_queued()))
            self._spawn_loop(self._sweep_forever())
        if self.role == "worker":
            self._spawn(self._consume_forever())

    async def stop(self) -> None:
        """Stop taking jobs, give running ones the grace period, put the rest back to queued."""
        if self._stopping:
            return
        self._stopping = True
        started = time.monotonic()
        phases: dict[str, float] = {}
        unregister_backend(self.db.engine, self)
        self._stop_event.set()
        for task in list(self._background):
            task.cancel()
        if self._executions:
            log.info("waiting for running jobs", count=len(self._executions))
        # At the same time: the housekeeping loops finish their round, running jobs get their
        # grace period.
        await asyncio.gather(
            _wait(self._loops, LOOP_STOP_SECONDS),
            _wait(self._executions, self.config.shutdown_grace_seconds),
            # Bounded: taskiq's receiver, cancelled while a Redis read is in flight, finishes
            # that read under a shield, and under load it was seen never to return.
            _wait(self._background, LOOP_STOP_SECONDS),
        )
        for task in list(self._loops):
            task.cancel()
        await _wait(self._loops, LOOP_STOP_SECONDS)
        stuck = [task for task in (*self._background, *self._loops) if not task.done()]
        if stuck:
            log.warning("job runner tasks did not stop; left behind", count=len(stuck))
        phases["grace"] = time.monotonic() - started
        leftovers = list(self._executions)
        for task in leftovers:
            # A job already cancelled (with the taskiq receiver) is putting itself back to
            # queued: a second cancel would interrupt that write and leave it `running`.
            if not task.cancelling():
                task.cancel()
        if leftovers:
            log.warning("running jobs cancelled at shutdown, queued again", count=len(leftovers))
            await asyncio.gather(*leftovers, return_exceptions=True)
        phases["put_back"] = time.monotonic() - started
        try:
            async with asyncio.timeout(BROKER_LIFECYCLE_TIMEOUT_SECONDS):
                await self.broker.shutdown()
        except Exception as exc:
            log.warning("job broker shutdown failed", error=repr(exc))
        phases["broker"] = time.monotonic() - started
        if phases["broker"] > self.config.shutdown_grace_seconds + 1:
            # Worth knowing: an orchestrator's kill timer runs meanwhile.
            log.warning("job runner was slow to stop", seconds_since_stop_began=phases)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _spawn_loop(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._loops.add(task)
        task.add_done_callback(self._loops.discard)

    async def _pause(self, seconds: float) -> bool:
        """Sleep `seconds`, less if the runner stops meanwhile; False once it is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop_event.wait()
        return not self._stop_event.is_set()

    async def _safely(self, work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception:
            log.exception("job runner housekeeping failed")

    # -- hand-off (the Backend protocol of app.core.jobs) ----------------------------------

    async def ensure_available(self) -> None:
        if not self.uses_redis:
            return
        assert isinstance(self.broker, RedisStreamBroker)
        try:
            async with asyncio.timeout(REDIS_CHECK_TIMEOUT_SECONDS):
                async with Redis(connection_pool=self.broker.connection_pool) as redis:
                    await redis.ping()
        except Exception as exc:
            log.warning("job queue unreachable", error=repr(exc))
            raise ensure_backend_available_error() from exc

    def hand_off(self, job_ids: list[uuid.UUID]) -> None:
        # Called from SQLAlchemy's after_commit hook (synchronous): the kick runs as a task.
        if self._stopping:
            return
        self._spawn(self._kick_many(job_ids))

    async def kick(self, job_id: uuid.UUID) -> bool:
        try:
            await self._task.kiq(str(job_id))
        except Exception as exc:
            log.warning("job hand-off failed; will retry", job_id=str(job_id), error=repr(exc))
            self._unkicked.add(job_id)
            return False
        self._unkicked.discard(job_id)
        return True

    async def _kick_many(self, job_ids: list[uuid.UUID]) -> None:
        for job_id in job_ids:
            await self.kick(job_id)

    async def _kick_later(self, job_id: uuid.UUID, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        await self.kick(job_id)

    async def _retry_hand_offs(self) -> None:
        while await self._pause(1.0):
            for job_id in list(self._unkicked):
                if not await self.kick(job_id):
                    break

    async def _kick_all_queued(self) -> None:
        now = utcnow()
        async with self.db.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Job.id, Job.run_after)
                    .where(Job.status == QUEUED)
                    .order_by(Job.run_after)
                )
            ).all()
            await session.commit()
        for job_id, run_after in rows:
            delay = (run_after - now).total_seconds()
            if delay > 0:
                self._spawn(self._kick_later(job_id, delay))
            else:
                await self.kick(job_id)

    # -- metrics -----------------------------------------------------------------------------

    async def _count_jobs_forever(self, registry: CollectorRegistry) -> None:
        """`jobs{state="queued"|...}` for GET /metrics, counted every sweep interval (a scrape
        only reads the last count: it never waits on the database)."""
        gauge = Gauge("jobs", "Jobs in the jobs table, by state.", ["state"], registry=registry)
        for state in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED):
            gauge.labels(state=state).set(0)
        while True:
            try:
                async with self.db.sessionmaker() as session:
                    await session.connection(execution_options=READ_ONLY)
                    rows = await session.execute(
                        select(Job.status, func.count()).group_by(Job.status)
                    )
                    counts: dict[str, int] = dict(rows.all())
                    await session.commit()
                for state in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED):
                    gauge.labels(state=state).set(counts.get(state, 0))
            except Exception:
                log.warning("could not count jobs for the metrics", exc_info=True)
            if not await self._pause(self.config.sweep_interval_seconds):
                return

    # -- the sweeper -----------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await self._safely(self.sweep())
            if not await self._pause(self.config.sweep_interval_seconds):
                return

    async def sweep(self) -> None:
        """Re-queue (or fail) jobs whose worker died; hand off queued jobs whose hand-off was
        lost."""
        now = utcnow()
        later: list[tuple[uuid.UUID, float]] = []
        async with self.db.sessionmaker() as session:
            dead = (
                await session.execute(
                    select(Job.id, Job.attempts, Job.max_attempts, Job.kind)
                    .where(Job.status == RUNNING, Job.lease_until < now)
                    .where(Job.id.not_in(self._running) if self._running else true())
                    .limit(200)
                )
            ).all()
            for job_id, attempts, max_attempts, kind in dead:
                fence = (Job.id == job_id, Job.status == RUNNING, Job.attempts == attempts)
                if attempts < max_attempts:
                    delay = self._backoff(get_job_kind(kind), attempts)
                    run_after = now + timedelta(seconds=delay)
                    values: dict[str, Any] = {
                        "status": QUEUED,
                        "run_after": run_after,
                        "kicked_at": run_after,
                        "lease_until": None,
                        "progress": 0,
                        "error": f"attempt {attempts} of {max_attempts} was interrupted: "
                        "the worker running it stopped answering",
                    }
                    later.append((job_id, delay))
                else:
                    values = {
                        "status": FAILED,
                        "lease_until": None,
                        "finished_at": now,
                        "error": f"the worker running attempt {attempts} of {max_attempts} "
                        "stopped answering; no attempts left",
                    }
                result = await session.execute(
                    update(Job)
                    .where(*fence, Job.lease_until < now)
                    .values(updated_at=now, **values)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    log.warning("job's worker is gone", job_id=str(job_id), now=values["status"])
            stale_before = now - timedelta(seconds=self.config.requeue_after_seconds)
            stale = (
                await session.scalars(
                    select(Job.id)
                    .where(Job.status == QUEUED, Job.run_after <= now, Job.kicked_at < stale_before)
                    .limit(500)
                )
            ).all()
            if stale:
                await session.execute(
                    update(Job).where(Job.id.in_(stale), Job.status == QUEUED).values(kicked_at=now)
                )
            await session.commit()
        for job_id, delay in later:
            self._spawn(self._kick_later(job_id, delay))
        for job_id in stale:
            await self.kick(job_id)

    # -- consuming (worker role) -----------------------------------------------------------

    async def _consume_forever(self) -> None:
        delay = 0.5
        while True:
            receiver = Receiver(
                broker=self.broker,
                run_startup=False,
                max_async_tasks=self.config.concurrency,
                max_prefetch=0,
                # Acknowledged once the job is recorded; a worker killed mid-job leaves the
                # message pending (and the job's lease running out).
                ack_type=AcknowledgeType.WHEN_EXECUTED,
            )
            try:
                await receiver.listen(asyncio.Event())
                delay = 0.5
            except Exception as exc:
                log.warning("cannot read the job queue; retrying", error=repr(exc), in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                # A Redis that came back empty (restarted without persistence) has lost the
                # stream and its consumer group: declare them again, or reads fail forever.
                with contextlib.suppress(Exception):  # still down: the next round tries again
                    await self._declare_group()

    async def _declare_group(self) -> None:
        assert isinstance(self.broker, RedisStreamBroker)
        async with Redis(connection_pool=self.broker.connection_pool) as redis:
            try:
                await redis.xgroup_create(STREAM_NAME, CONSUMER_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # -- running one job -------------------------------------------------------------------

    async def _execute(self, job_id: str) -> None:
        """The one taskiq task: claim the job, run it, record the outcome. Never raises but
        CancelledError, so the message is always acknowledged."""
        current = asyncio.current_task()
        assert current is not None
        self._executions.add(current)
        try:
            async with self._slots:
                if self._stopping:
                    return
                try:
                    parsed = uuid.UUID(job_id)
                except ValueError:
                    log.warning("message with an invalid job id dropped", job_id=job_id)
                    return
                try:
                    job = await self._claim(parsed)
                except SQLAlchemyError:
                    log.exception("could not claim job; will retry", job_id=job_id)
                    self._spawn(self._kick_later(parsed, 1.0))
                    return
                if job is None:
                    return  # cancelled, finished, running elsewhere, or not due yet
                self._running.add(job.id)
                try:
                    await self._run(job)
                finally:
                    self._running.discard(job.id)
        finally:
            self._executions.discard(current)

    async def _claim(self, job_id: uuid.UUID) -> Job | None:
        now = utcnow()
        async with self.db.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == QUEUED, Job.run_after <= now)
                .values(
                    status=RUNNING,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    lease_until=now + timedelta(seconds=self.config.lease_seconds),
                    updated_at=now,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                await session.rollback()
                return None
            job = await session.get(Job, job_id)
            await session.commit()
            return job

    async def _run(self, job: Job) -> None:
        spec = get_job_kind(job.kind)
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
        bound = structlog.get_logger("app.jobs").bind(
            job_id=str(job.id), kind=job.kind, attempt=attempt
        )
        lost = False
        outcome: _Outcome | None = None
        # The attempt runs in a task of its own while this one keeps the lease; losing the
        # lease (the job was cancelled, or presumed dead and taken over) cancels the attempt.
        # Plain asyncio on purpose: an anyio cancel scope's cancel() formats the repr of the
        # current task, which under taskiq's receiver costs ~80 ms of CPU per job.
        attempt_task = asyncio.get_running_loop().create_task(
            self._attempt(spec, ctx, job, bound), name=f"job {job.id} attempt {attempt}"
        )
        try:
            while True:
                finished, _ = await asyncio.wait(
                    {attempt_task}, timeout=self.config.lease_seconds / 5
                )
                if finished:
                    outcome = attempt_task.result()
                    break
                if not await self._renew(job.id, attempt):
                    lost = True
                    attempt_task.cancel()
                    await asyncio.gather(attempt_task, return_exceptions=True)
                    break
        except asyncio.CancelledError:
            # Shutdown after the grace period: the job goes back to the queue, and this
            # attempt does not count.
            attempt_task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(attempt_task, return_exceptions=True)
                await self._put_back(job.id, attempt)
                await self._discard_file(ctx)
            raise
        if lost or outcome is None:
            bound.warning("job taken away while running (cancelled or lease lost)")
            await self._discard_file(ctx)
            return
        await self._record(job, spec, ctx, outcome, bound)

    async def _attempt(
        self, spec: JobKind | None, ctx: JobContext, job: Job, bound: Any
    ) -> _Outcome:
        if spec is None:
            return _Outcome("failed", error=f"unknown job kind {job.kind!r}")
        try:
            spec.signature.bind(ctx, **job.args)
        except TypeError:
            return _Outcome("failed", error="the job's arguments do not fit its kind")
        try:
            with anyio.move_on_after(spec.time_limit) as limit:
                value = await spec.func(ctx, **job.args)
            if limit.cancelled_caught:
                bound.warning("job hit its time limit", time_limit=spec.time_limit)
                return self._retry_or_fail(
                    spec, ctx.attempt, f"time limit of {spec.time_limit:g} s exceeded"
                )
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                return _Outcome("failed", error="the job returned a result that is not JSON")
            return _Outcome("succeeded", result=value)
        except JobFailed as exc:
            return _Outcome("failed", result=exc.result, error=exc.message[:MAX_ERROR_LENGTH])
        except Exception as exc:
            bound.exception("job raised")
            return self._retry_or_fail(spec, ctx.attempt, _describe(exc))

    def _retry_or_fail(self, spec: JobKind, attempt: int, reason: str) -> _Outcome:
        prefix = f"attempt {attempt} of {spec.max_attempts} failed: "
        if spec.retryable and attempt < spec.max_attempts:
            return _Outcome("retry", error=prefix + reason, delay=self._backoff(spec, attempt))
        return _Outcome("failed", error=prefix + reason)

    def _backoff(self, spec: JobKind | None, attempt: int) -> float:
        base = spec.retry_delay if spec is not None else 1.0
        ceiling = min(base * 2.0 ** max(0, attempt - 1), self.config.max_retry_delay_seconds)
        # Jitter: jobs that failed together (the mail server was down) do not retry together.
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311

    async def _record(
        self, job: Job, spec: JobKind | None, ctx: JobContext, outcome: _Outcome, bound: Any
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {"lease_until": None, "updated_at": now}
        if outcome.status == "succeeded":
            values |= {
                "status": SUCCEEDED,
                "progress": 100,
                "result": outcome.result,
                "error": None,
                "finished_at": now,
                "result_key": ctx.result_key,
            }
        elif outcome.status == "retry":
            run_after = now + timedelta(seconds=outcome.delay)
            values |= {
                "status": QUEUED,
                "progress": 0,
                "error": outcome.error,
                "run_after": run_after,
                "kicked_at": run_after,
            }
        else:
            values |= {
                "status": FAILED,
                "result": outcome.result,
                "error": outcome.error,
                "finished_at": now,
            }
        async with self.db.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == RUNNING, Job.attempts == ctx.attempt)
                .values(**values)
            )
            await session.commit()
        if not result.rowcount:  # type: ignore[attr-defined]
            bound.warning("job outcome not recorded: it was cancelled meanwhile")
            await self._discard_file(ctx)
            return
        if outcome.status != "succeeded":
            await self._discard_file(ctx)
        if outcome.status == "retry":
            bound.info("job will be retried", in_s=round(outcome.delay, 2), error=outcome.error)
            self._spawn(self._kick_later(job.id, outcome.delay))
        else:
            bound.info("job finished", status=values["status"])

    async def _renew(self, job_id: uuid.UUID, attempt: int) -> bool:
        now = utcnow()
        try:
            async with self.db.sessionmaker() as session:
                result = await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == RUNNING, Job.attempts == attempt)
                    .values(lease_until=now + timedelta(seconds=self.config.lease_seconds))
                )
                await session.commit()
        except SQLAlchemyError:
            # A database hiccup is not a lost lease; the next renewal tries again.
            log.warning("could not renew a job's lease", job_id=str(job_id), exc_info=True)
            return True
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _put_back(self, job_id: uuid.UUID, attempt: int) -> None:
        now = utcnow()
        try:
            async with self.db.sessionmaker() as session:
                await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == RUNNING, Job.attempts == attempt)
                    .values(
                        status=QUEUED,
                        attempts=attempt - 1,
                        progress=0,
                        lease_until=None,
                        run_after=now,
                        # Due for a hand-off at once: a live worker's sweeper takes it.
                        kicked_at=now - timedelta(seconds=self.config.requeue_after_seconds),
                        updated_at=now,
                    )
                )
                await session.commit()
        except SQLAlchemyError:
            # Its lease runs out instead, and a sweeper re-queues it.
            log.exception("could not put a job back to queued", job_id=str(job_id))

    def _progress_writer(self, job_id: uuid.UUID, attempt: int) -> Callable[[int], Awaitable[None]]:
        last_value = -1
        last_write = 0.0

        async def write(percent: int) -> None:
            nonlocal last_value, last_write
            now = time.monotonic()
            if percent == last_value or (
                percent < 100 and now - last_write < PROGRESS_INTERVAL_SECONDS
            ):
                return
            last_value, last_write = percent, now
            async with self.db.sessionmaker() as session:
                await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == RUNNING, Job.attempts == attempt)
                    .values(progress=percent, updated_at=utcnow())
                )
                await session.commit()

        return write

    async def _discard_file(self, ctx: JobContext) -> None:
        if ctx.result_key is None:
            return
        try:
            await ctx.storage.delete(ctx.result_key)
        except Exception:
            log.warning("could not delete a job's partial result", key=ctx.result_key)


async def run_job(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """The one taskiq task. Module-level (taskiq re-exports registered functions from their
    module); it finds its runner on the broker that delivered the message."""
    runner: JobRunner = context.broker.state.job_runner
    await runner._execute(job_id)


async def _wait(tasks: set[asyncio.Task[Any]], seconds: float) -> None:
    if tasks:
        await asyncio.wait(set(tasks), timeout=seconds)


def _describe(exc: BaseException) -> str:
    # SQL and driver messages stay in the log; other messages are short and useful
    # ("Connection refused").
    if isinstance(exc, SQLAlchemyError):
        return type(exc).__name__
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def make_broker(settings: Settings) -> AsyncBroker:
    if not settings.redis_url:
        # Our own semaphore bounds concurrency; the broker just starts a task per message.
        return InMemoryBroker(max_async_tasks=1000, propagate_exceptions=False)
    longest = max((kind.time_limit for kind in registered_kinds().values()), default=300.0)
    return RedisStreamBroker(
        settings.redis_url,
        queue_name=STREAM_NAME,
        consumer_group_name=CONSUMER_GROUP,
        # "0", not "$": a group created after jobs were already added still sees them.
        consumer_id="0",
        maxlen=STREAM_MAX_LENGTH,
        # The stream re-delivers a message unacknowledged this long to another worker. Above
        # the longest time limit, so a slow job is not re-delivered while it runs; and a
        # re-delivery that happens anyway finds the job claimed and is dropped.
        idle_timeout=int((longest + 60) * 1000),
        # The re-delivery lock is released by itself if its holder is killed.
        unacknowledged_lock_timeout=30,
        xread_block=1000,
    )


async def open_job_runner(
    *,
    settings: Settings,
    db: Database,
    http: httpx.AsyncClient,
    mailer: Mailer,
    storage: Any = None,
    role: Role | None = None,
    config: RunnerConfig | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> JobRunner:
    """Build and start the runner: embedded without REDIS_URL; with it, a hand-off-only client
    in the web process (`role="client"`) and `role="worker"` in `python -m app worker`."""
    if role is None:
        role = "client" if settings.redis_url else "embedded"
    if role != "embedded" and not settings.redis_url:
        raise ValueError(f"a {role} job runner needs REDIS_URL")
    if config is None:
        config = RunnerConfig(shutdown_grace_seconds=float(settings.graceful_shutdown_seconds))
    runner = JobRunner(
        settings=settings,
        db=db,
        http=http,
        mailer=mailer,
        broker=make_broker(settings),
        role=role,
        config=config,
        storage=storage,
        metrics_registry=metrics_registry,
    )
    await runner.start()
    return runner


async def run_worker(settings: Settings, config: RunnerConfig) -> None:
    """`python -m app worker`: run jobs from Redis until SIGTERM or SIGINT, then stop as the
    web process does (grace period, unfinished jobs back to queued)."""
    import signal

    from app.core.db import open_database
    from app.core.email import open_mailer
    from app.core.observability import configure_logging
    from app.core.storage import open_storage

    configure_logging(fmt=settings.effective_log_format, level=settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = await open_database(settings)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            runner = await open_job_runner(
                settings=settings,
                db=db,
                http=http,
                mailer=open_mailer(settings),
                storage=open_storage(settings),
                role="worker",
                config=config,
            )
            log.info(
                "worker started",
                concurrency=config.concurrency,
                kinds=sorted(registered_kinds()),
                database=db.engine.dialect.name,
            )
            try:
                await stop.wait()
                log.info("worker stopping")
            finally:
                await runner.stop()
    finally:
        await db.dispose()
    log.info("worker stopped")
