from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.core.body_limit import accepts_large_body
from app.core.db import SessionDep
from app.core.dependencies import SettingsDep, StorageDep
from app.core.errors import problems
from app.files.uploads import MULTIPART_FILE_BODY, MultipartStream
from app.imports import service
from app.imports.schemas import OnError
from app.jobs.schemas import JobRead
from app.users.dependencies import CurrentSuperuser

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post(
    "/users",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(
        401,
        403,
        411,
        413,
        415,
        malformed_multipart=400,
        file_missing=422,
        invalid_csv=422,
        insufficient_storage=507,
    ),
    openapi_extra=MULTIPART_FILE_BODY,
)
@accepts_large_body
async def import_users(
    request: Request,
    response: Response,
    caller: CurrentSuperuser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    on_error: OnError = "abort",
) -> JobRead:
    """Queue an import of users from a CSV (form field `file`) with the header
    `email,name[,age][,password][,balance]`. The file is streamed to storage, never held in
    memory; the job reads it row by row. Poll the job: its result is
    `{"imported", "rejected", "errors": [{"line", "column", "message"}]}`."""
    upload = await MultipartStream(request).file("file")
    job = await service.start_user_import(
        session,
        storage,
        requested_by=caller.id,
        filename=upload.filename,
        content_type=upload.content_type,
        chunks=upload.chunks,
        max_bytes=settings.max_upload_bytes,
        on_error=on_error,
    )
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.model_validate(job)
