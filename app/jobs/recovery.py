"""Recovery: what no broker message will fix.

- The outbox: a hand-off that did not reach the broker (Redis down) waits in the runner's
  `unsent` and is sent again every half second, so it is delivered as soon as the broker
  answers. The first failure logs one warning, the first success after it one info line.
- A job whose worker died stops having its heartbeat (`lease_until`) renewed. With Redis, the
  stream delivers the message the dead worker held to another worker after its idle timeout
  and the claim takes the job over; the sweep below covers the rest (no attempts left, the
  stream lost with a Redis restarted empty, the in-process queue lost with its process): the
  job is queued and handed off again, or failed with a reason.
- A queued job whose hand-off was lost (its process died between commit and hand-off) is
  handed off again once its last hand-off is REQUEUE_AFTER_SECONDS old.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Gauge
from sqlalchemy import func, select, update

from app.core.db import READ_ONLY, Database, utcnow
from app.jobs.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Job

if TYPE_CHECKING:
    from app.jobs.runner import JobRunner

log = structlog.get_logger("app.jobs")

OUTBOX_INTERVAL_SECONDS = 0.5
REQUEUE_AFTER_SECONDS = 120.0
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)


async def send(runner: JobRunner, jobs: list[tuple[uuid.UUID, str]]) -> None:
    """Hand these (id, kind) jobs to the broker; what it refuses waits in the outbox."""
    for index, (job_id, kind) in enumerate(jobs):
        try:
            await runner.send(job_id, kind)
        except Exception as exc:
            runner.unsent.update(jobs[index:])
            if not runner.queue_down:
                runner.queue_down = True
                log.warning("job queue unreachable; hand-offs wait for it", error=repr(exc))
            return
        if runner.queue_down:
            runner.queue_down = False
            log.info("job queue reachable again", waiting=len(runner.unsent))


def put_back_values(attempt: int) -> dict[str, Any]:
    """A job interrupted by its own process's shutdown: queued again, that attempt not counted,
    due for a hand-off at once."""
    now = utcnow()
    stale = now - timedelta(seconds=REQUEUE_AFTER_SECONDS)
    return {"status": QUEUED, "attempts": attempt - 1, "progress": 0, "lease_until": None} | {
        "run_after": now,
        "kicked_at": stale,
    }


async def sweep(
    db: Database, *, requeue_after: float, running_here: set[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    """One pass over the table; returns the (id, kind) of the jobs to hand off again."""
    now = utcnow()
    again: list[tuple[uuid.UUID, str]] = []
    async with db.sessionmaker() as session:
        dead = await session.execute(
            select(Job.id, Job.kind, Job.attempts, Job.max_attempts)
            .where(Job.status == RUNNING, Job.lease_until < now)
            .limit(200)
        )
        for job_id, kind, attempts, max_attempts in dead.all():
            if job_id in running_here:  # alive by definition, whatever its heartbeat says
                continue
            if attempts < max_attempts:
                values: dict[str, Any] = {"status": QUEUED, "run_after": now, "kicked_at": now}
                values["error"] = (
                    f"attempt {attempts} of {max_attempts} was interrupted: "
                    "the worker running it stopped answering"
                )
            else:
                values = {"status": FAILED, "finished_at": now}
                values["error"] = (
                    f"the worker running attempt {attempts} of {max_attempts} "
                    "stopped answering; no attempts left"
                )
            fence = (Job.id == job_id, Job.status == RUNNING, Job.attempts == attempts)
            result = await session.execute(
                update(Job)
                .where(*fence, Job.lease_until < now)
                .values(lease_until=None, progress=0, updated_at=now, **values)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                log.warning("job's worker is gone", job_id=str(job_id), now=values["status"])
                if values["status"] == QUEUED:
                    again.append((job_id, kind))
        lost = await session.execute(
            select(Job.id, Job.kind)
            .where(Job.status == QUEUED, Job.run_after <= now)
            .where(Job.kicked_at <= now - timedelta(seconds=requeue_after))
            .limit(500)
        )
        lost_jobs = [(job_id, kind) for job_id, kind in lost.all()]
        if lost_jobs:
            ids = [job_id for job_id, _ in lost_jobs]
            await session.execute(
                update(Job).where(Job.id.in_(ids), Job.status == QUEUED).values(kicked_at=now)
            )
        await session.commit()
    return again + lost_jobs


async def recover_forever(runner: JobRunner) -> None:
    """The runner's housekeeping loop: the outbox every half second; where jobs run, a sweep
    every JOB_RECOVERY_SECONDS (the first one at start-up; in-process, it hands off every
    queued job, as the queue died with the last process)."""
    gauge = None
    if runner.metrics_registry is not None:
        gauge = Gauge(
            "jobs", "Jobs in the jobs table, by state.", ["state"], registry=runner.metrics_registry
        )
    requeue_after = (
        0.0 if runner.runs_jobs and not runner.settings.redis_url else REQUEUE_AFTER_SECONDS
    )
    last_sweep = float("-inf")
    while True:
        if runner.unsent:
            waiting = list(runner.unsent.items())
            runner.unsent.clear()
            await send(runner, waiting)
        if time.monotonic() - last_sweep >= runner.settings.job_recovery_seconds:
            last_sweep = time.monotonic()
            try:
                if runner.runs_jobs:
                    jobs = await sweep(
                        runner.db, requeue_after=requeue_after, running_here=set(runner.running)
                    )
                    requeue_after = REQUEUE_AFTER_SECONDS
                    await send(runner, jobs)
                if gauge is not None:
                    await _count(runner.db, gauge)
            except Exception:
                log.exception("job recovery failed; next round retries")
        if not await runner.pause(OUTBOX_INTERVAL_SECONDS):
            return


async def _count(db: Database, gauge: Gauge) -> None:
    """`jobs{state=...}` for GET /metrics: a scrape reads the last count, never the database."""
    async with db.sessionmaker() as session:
        await session.connection(execution_options=READ_ONLY)
        rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
        counts: dict[str, int] = dict(rows.all())
        await session.commit()
    for state in STATES:
        gauge.labels(state=state).set(counts.get(state, 0))
