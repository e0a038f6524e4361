"""The export job kind."""

from __future__ import annotations

from typing import Any

from app.exports import service
from app.jobs.queue import JobContext, JobFailed, job_kind


@job_kind(service.EXPORT_KIND, retryable=True, time_limit=1800, max_attempts=3, retry_delay=5)
async def export_transactions(ctx: JobContext) -> dict[str, Any]:
    """The caller's transactions as CSV, downloadable from GET /jobs/{id}/result."""
    if ctx.user_id is None:
        raise JobFailed("the user who asked for this export no longer exists")
    return await service.export_transactions(
        ctx.sessionmaker,
        ctx.storage,
        ctx.result_file_key(".csv"),
        user_id=ctx.user_id,
        progress=ctx.set_progress,
    )
