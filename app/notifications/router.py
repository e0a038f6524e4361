from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.core.db import SessionDep
from app.core.errors import problems
from app.jobs.schemas import JobRead
from app.notifications import service
from app.notifications.schemas import NotificationCreate
from app.users.dependencies import CurrentSuperuser

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(401, 403, 404, 503),
)
async def send_notification(
    body: NotificationCreate, caller: CurrentSuperuser, session: SessionDep, response: Response
) -> JobRead:
    job = await service.request_email(
        session,
        requested_by=caller.id,
        subject=body.subject,
        body=body.body,
        to=str(body.to) if body.to is not None else None,
        user_id=body.user_id,
    )
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.model_validate(job)
