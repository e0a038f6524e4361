from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.core.db import SessionDep
from app.core.errors import problems
from app.exports import service
from app.jobs.schemas import JobRead
from app.users.dependencies import CurrentUser

router = APIRouter(prefix="/exports", tags=["exports"])


@router.post(
    "/transactions",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {"description": "the export job; poll it at `Location`, download its result"},
        **problems(401, 503),
    },
)
async def export_transactions(
    user: CurrentUser, session: SessionDep, response: Response
) -> JobRead:
    job = await service.request_transactions_export(session, user_id=user.id)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.model_validate(job)
