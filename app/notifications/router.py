from __future__ import annotations

from fastapi import APIRouter, status

from app.auth.dependencies import CurrentSuperuser
from app.core.db import SessionDep
from app.core.errors import problems
from app.jobs.schemas import JobRead
from app.notifications import service
from app.notifications.schemas import NotificationCreate

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(401, 403, 404, 503, job_queue_unavailable=503),
)
async def send_notification(
    body: NotificationCreate, caller: CurrentSuperuser, session: SessionDep
) -> JobRead:
    job = await service.request_email(
        session,
        requested_by=caller.id,
        subject=body.subject,
        body=body.body,
        to=str(body.to) if body.to is not None else None,
        user_id=body.user_id,
    )
    return JobRead.model_validate(job)
