"""Import job kinds."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.security import PasswordHasher
from app.imports import service
from app.imports.schemas import OnError
from app.jobs.queue import JobContext, job_kind


# Not retryable: the import is one transaction, so an attempt that died imported nothing, but an
# attempt that committed and died before recording its outcome must not import the file again
# (every row would come back as a duplicate).
@job_kind(service.JOB_KIND, retryable=False, time_limit=900)
async def import_users(ctx: JobContext, *, file_id: str, on_error: OnError) -> dict[str, Any]:
    hasher = PasswordHasher(
        time_cost=ctx.settings.argon2_time_cost, memory_kib=ctx.settings.argon2_memory_kib
    )
    return await service.run_user_import(
        ctx.sessionmaker,
        ctx.storage,
        hasher,
        file_id=uuid.UUID(file_id),
        on_error=on_error,
        progress=ctx.set_progress,
    )
