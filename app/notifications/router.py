from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from app.core.db import SessionDep
from app.jobs.schemas import JobRead
from app.notifications import service
from app.notifications.schemas import NotificationCreate
from app.users.dependencies import CurrentSuperuser

router = APIRouter(prefix="/notifications", tags=["notifications"])

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
QUEUE_DOWN: dict[str, Any] = {
    "description": "the job queue (Redis) is unreachable; nothing was queued",
    "content": {
        "application/problem+json": {
            "example": {
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "the job queue is unreachable; nothing was done, retry shortly",
                "code": "job_queue_unavailable",
                "request_id": "9f1c2b3a4d5e6f70",
            }
        }
    },
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: QUEUE_DOWN},
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
