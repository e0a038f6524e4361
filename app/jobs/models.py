"""The `jobs` table: the source of truth for every job's status, progress and result.

The broker carries only a job's id; what the API shows, and who may run a job, is decided here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, utcnow

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
QUEUED: JobStatus = "queued"
RUNNING: JobStatus = "running"
SUCCEEDED: JobStatus = "succeeded"
FAILED: JobStatus = "failed"
CANCELLED: JobStatus = "cancelled"
FINISHED_STATUSES: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})

MAX_KIND_LENGTH = 100
MAX_ERROR_LENGTH = 1000

# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER (the
# same type as users.id, which this column references).
_UserId = BigInteger().with_variant(Integer(), "sqlite")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # Recovery's two questions: which queued jobs lost their hand-off, which running ones
        # lost their worker.
        Index("ix_jobs_status_run_after", "status", "run_after"),
        # GET /jobs: a user's jobs, newest first.
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(MAX_KIND_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    # The job stays visible to superusers (and keeps running) when its user is deleted.
    user_id: Mapped[int | None] = mapped_column(
        _UserId, ForeignKey("users.id", ondelete="SET NULL")
    )
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # Incremented by every claim; also the fencing token: a worker writes `WHERE attempts =
    # <its attempt>`, so a worker whose job was taken over writes nothing.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    # A storage key holding the job's downloadable result (an export), once it succeeded.
    result_key: Mapped[str | None] = mapped_column(String(500))
    # When the next attempt is due (later than now while a retry waits out its back-off).
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    # The last hand-off to the broker; a queued job not handed off for long is handed again.
    kicked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The running worker's heartbeat; past it, the worker is presumed dead.
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
