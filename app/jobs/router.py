from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse

from app.core.db import READ_ONLY, SessionDep
from app.core.dependencies import PageParamsDep, StorageDep
from app.core.errors import NotFound, problems
from app.core.pagination import Page
from app.jobs import service
from app.jobs.schemas import JobRead, JobStatusName
from app.users.dependencies import CurrentUser

router = APIRouter(prefix="/jobs", tags=["jobs"])

MEDIA_TYPES = {".csv": "text/csv; charset=utf-8", ".json": "application/json"}


@router.get("", responses=problems(401))
async def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    page: PageParamsDep,
    status: Annotated[JobStatusName | None, Query()] = None,
) -> Page[JobRead]:
    await session.connection(execution_options=READ_ONLY)
    jobs, next_cursor = await service.list_jobs(session, page, user_id=user.id, status=status)
    return Page(items=[JobRead.model_validate(job) for job in jobs], next_cursor=next_cursor)


@router.get("/{job_id}", responses=problems(401, 404))
async def read_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> JobRead:
    await session.connection(execution_options=READ_ONLY)
    job = await service.get_job(session, job_id, user_id=user.id, is_superuser=user.is_superuser)
    return JobRead.model_validate(job)


@router.get(
    "/{job_id}/result",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "the job's file, streamed"},
        **problems(401, 404, 409),
    },
)
async def download_result(
    job_id: uuid.UUID, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    await session.connection(execution_options=READ_ONLY)
    job = await service.get_job(session, job_id, user_id=user.id, is_superuser=user.is_superuser)
    key = service.result_key(job)
    # Checked before streaming: once the headers are sent a missing file can only cut the
    # body short.
    if not await storage.exists(key):
        raise NotFound(f"job {job_id}'s result file is gone", code="job_result_not_found")
    suffix = "." + key.rsplit(".", 1)[1] if "." in key.rsplit("/", 1)[-1] else ""
    filename = f"{job.kind.replace('.', '-')}-{job.id}{suffix}"
    return StreamingResponse(
        storage.open(key),
        media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(401, 404, 409),
)
async def cancel_job(
    job_id: uuid.UUID, user: CurrentUser, session: SessionDep, response: Response
) -> JobRead:
    job = await service.get_job(session, job_id, user_id=user.id, is_superuser=user.is_superuser)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.model_validate(await service.cancel_job(session, job))
