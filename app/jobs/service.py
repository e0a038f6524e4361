"""Jobs as their owners see them: list, read, cancel, and where a result file lives."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.errors import Conflict, NotFound
from app.core.pagination import PageParams, newest_first, next_page
from app.jobs.models import CANCELLED, QUEUED, RUNNING, Job


def _not_found(job_id: uuid.UUID) -> NotFound:
    return NotFound(f"job {job_id} not found", code="job_not_found")


async def get_job(
    session: AsyncSession, job_id: uuid.UUID, *, user_id: int, is_superuser: bool
) -> Job:
    """The job, if the caller owns it or is a superuser; someone else's job is "not found"."""
    job = await session.get(Job, job_id)
    await session.commit()
    if job is None or (job.user_id != user_id and not is_superuser):
        raise _not_found(job_id)
    return job


async def list_jobs(
    session: AsyncSession, page: PageParams, *, user_id: int, status: str | None = None
) -> tuple[Sequence[Job], str | None]:
    """The caller's jobs, newest first."""
    query = select(Job).where(Job.user_id == user_id)
    if status is not None:
        query = query.where(Job.status == status)
    rows = (await session.scalars(newest_first(query, Job.created_at, Job.id, page))).all()
    await session.commit()
    return next_page(rows, page)


async def cancel_job(session: AsyncSession, job: Job) -> Job:
    """Cancel a queued or running job. A running one stops within a lease renewal: its worker
    finds the row no longer its own and cancels the work."""
    # Read before the rollback below: it expires every loaded attribute, and reading one
    # afterwards would be lazy I/O outside the session's await (MissingGreenlet, a 500).
    job_id = job.id
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_((QUEUED, RUNNING)))
        .values(status=CANCELLED, finished_at=now, lease_until=None, updated_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict(f"job {job_id} has already finished", code="job_finished")
    await session.commit()
    refreshed = await session.get(Job, job_id, populate_existing=True)
    await session.commit()
    assert refreshed is not None
    return refreshed


def result_key(job: Job) -> str:
    """The storage key of the job's file: 409 while the job is not finished, 404 when it has
    none."""
    if job.status in (QUEUED, RUNNING):
        raise Conflict(
            f"job {job.id} is {job.status}; its result is not ready", code="job_not_finished"
        )
    if job.result_key is None:
        raise NotFound(f"job {job.id} has no result file", code="job_result_not_found")
    return job.result_key
