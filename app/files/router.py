from __future__ import annotations

import uuid
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import Response, StreamingResponse

from app.core.body_limit import accepts_large_body
from app.core.db import SessionDep
from app.core.dependencies import SettingsDep, StorageDep
from app.core.errors import problems
from app.files import service
from app.files.schemas import FileRead
from app.files.uploads import MULTIPART_FILE_BODY, MultipartStream
from app.users.dependencies import CurrentUser

router = APIRouter(prefix="/files", tags=["files"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(
        401, 411, 413, 415, malformed_multipart=400, file_missing=422, insufficient_storage=507
    ),
    openapi_extra=MULTIPART_FILE_BODY,
)
@accepts_large_body
async def upload_file(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> FileRead:
    """Stream one file (form field `file`) to storage: read chunk by chunk, hashed and written
    as it arrives, refused with 413 as soon as it passes MAX_UPLOAD_BYTES."""
    upload = await MultipartStream(request).file("file")
    row = await service.store_upload(
        session,
        storage,
        owner_id=user.id,
        filename=upload.filename,
        content_type=upload.content_type,
        chunks=upload.chunks,
        max_bytes=settings.max_upload_bytes,
    )
    return FileRead.model_validate(row)


@router.get("/{file_id}", responses=problems(401, file_not_found=404))
async def read_file(file_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> FileRead:
    row = await service.get_file(session, file_id, user_id=user.id, is_superuser=user.is_superuser)
    return FileRead.model_validate(row)


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the bytes"},
        **problems(401, file_not_found=404),
    },
)
async def download_file(
    file_id: uuid.UUID, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    row = await service.get_file(session, file_id, user_id=user.id, is_superuser=user.is_superuser)
    chunks = await service.open_content(storage, row)
    return StreamingResponse(
        chunks,
        media_type=row.content_type,
        headers={
            "Content-Length": str(row.size),
            # Served as a download, never rendered: an uploaded HTML file must not run as a
            # page of this origin.
            "Content-Disposition": _attachment(row.filename),
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{row.sha256}"',
        },
    )


@router.delete(
    "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, file_not_found=404),
)
async def delete_file(
    file_id: uuid.UUID, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> Response:
    await service.delete_file(
        session, storage, file_id, user_id=user.id, is_superuser=user.is_superuser
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _attachment(filename: str) -> str:
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
