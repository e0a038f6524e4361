"""Jobs: one interface, two backends, the database as the source of truth.

    @job_kind("exports.transactions", time_limit=600)
    async def export(ctx: JobContext, *, fmt: str) -> dict[str, Any]: ...

    job = await enqueue(session, kind="exports.transactions", args={...}, user_id=user.id)
    await session.commit()      # the hand-off to the backend happens here, and only if it commits

Every job is first a row in `jobs`, written in the caller's transaction. The backend (taskiq:
its in-process broker by default, its Redis stream broker when REDIS_URL is set, see
`app.core.jobs_runner`) only carries the job's id. A worker claims a job with a conditional
UPDATE (`... WHERE id = :id AND status = 'queued'`), so a redelivered or re-kicked message
never runs it twice, and it keeps a lease on the row while it runs, so a job whose worker died
is found (the lease ran out) and re-queued or failed with a reason: none stays `running`.
"""

from __future__ import annotations

import inspect
import json
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.db import Base, utcnow
from app.core.errors import ServiceUnavailable
from app.core.storage import Storage, open_storage

if TYPE_CHECKING:
    import httpx

    from app.core.email import Mailer
    from app.core.settings import Settings

log = structlog.get_logger("app.jobs")

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
        # The sweeper's two questions: which queued jobs are due, which running ones are dead.
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
    # Incremented by every claim; it is also the fencing token: a worker writes the outcome
    # only `WHERE attempts = <its attempt>`, so a worker that lost its lease writes nothing.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    # A storage key holding the job's downloadable result (an export), once it succeeded.
    result_key: Mapped[str | None] = mapped_column(String(500))
    # Not before: set in the future by a retry's backoff.
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    # Last hand-off to the backend; a queued job not handed off for a while is handed again.
    kicked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Renewed by the worker while the job runs; past it, the worker is presumed dead.
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobFailed(Exception):
    """Raise from a job to fail it for good (no retry), optionally with a result to keep
    (for example the rows an import rejected)."""

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    func: JobFunction
    retryable: bool
    time_limit: float
    max_attempts: int
    retry_delay: float

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.func)


_KINDS: dict[str, JobKind] = {}


def job_kind(
    kind: str,
    *,
    retryable: bool = True,
    time_limit: float = 300,
    max_attempts: int = 5,
    retry_delay: float = 1.0,
) -> Callable[[JobFunction], JobFunction]:
    """Register `async def f(ctx: JobContext, **args)` as the job kind `kind`.

    retryable: an unexpected exception is retried with exponential backoff (from `retry_delay`
    seconds, with jitter) until `max_attempts`; raising `JobFailed` never is. Not retryable:
    one attempt, and a job whose worker died is failed rather than run again.
    time_limit: seconds one attempt may run before it is cancelled and counted as failed.
    """
    if not kind or len(kind) > MAX_KIND_LENGTH or kind != kind.strip():
        raise ValueError(f"invalid job kind name {kind!r}")
    if time_limit <= 0 or max_attempts < 1 or retry_delay < 0:
        raise ValueError("time_limit > 0, max_attempts >= 1 and retry_delay >= 0 are required")

    def register(func: JobFunction) -> JobFunction:
        existing = _KINDS.get(kind)
        if existing is not None and existing.func is not func:
            raise ValueError(f"job kind {kind!r} is already registered by {existing.func!r}")
        _KINDS[kind] = JobKind(
            name=kind,
            func=func,
            retryable=retryable,
            time_limit=float(time_limit),
            max_attempts=max_attempts if retryable else 1,
            retry_delay=float(retry_delay),
        )
        return func

    return register


def get_job_kind(kind: str) -> JobKind | None:
    return _KINDS.get(kind)


def registered_kinds() -> dict[str, JobKind]:
    return dict(_KINDS)


class Backend(Protocol):
    """What `enqueue` needs from the running job runner (see app.core.jobs_runner)."""

    async def ensure_available(self) -> None:
        """Raise `ServiceUnavailable` when jobs cannot be handed to the backend now."""

    def hand_off(self, job_ids: list[uuid.UUID]) -> None:
        """Called right after the transaction that added these jobs committed."""


# The running runner of each engine: `enqueue` receives only a session, and a session knows
# its engine. Registered by the runner when it starts, dropped when it stops.
_BACKENDS: weakref.WeakKeyDictionary[Engine, Backend] = weakref.WeakKeyDictionary()
_PENDING = "app.jobs.pending"
_HOOKED = "app.jobs.hooked"


def register_backend(engine: AsyncEngine, backend: Backend) -> None:
    _BACKENDS[engine.sync_engine] = backend


def unregister_backend(engine: AsyncEngine, backend: Backend) -> None:
    if _BACKENDS.get(engine.sync_engine) is backend:
        del _BACKENDS[engine.sync_engine]


def _backend_of(session: AsyncSession) -> Backend | None:
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        return _BACKENDS.get(bind.sync_engine)
    return None


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    args: dict[str, Any],
    user_id: int | None = None,
    job_id: uuid.UUID | None = None,
) -> Job:
    """Add a queued job to `session` (in the caller's transaction) and return it, id set.

    `job_id` (optional) makes the enqueue idempotent for a caller that may run twice (a job
    that enqueues jobs): derive it from what the job is about (`uuid.uuid5`) and skip the ids
    that already exist; a duplicate that slips through fails the commit on the primary key.

    The backend is handed the job only after `session` commits, never if it rolls back, so a
    job cannot run on data that was never committed nor run for a request that failed. When
    the backend is unreachable (Redis is down) this raises `ServiceUnavailable` (a 503) before
    anything is written. The caller commits.
    """
    spec = _KINDS.get(kind)
    if spec is None:
        raise LookupError(f"unknown job kind {kind!r}: is its module imported by app.job_kinds?")
    try:
        spec.signature.bind(None, **args)
    except TypeError as exc:
        raise TypeError(f"arguments {sorted(args)} do not fit job kind {kind!r}: {exc}") from exc
    # Stored as JSON: refuse what would not round-trip now, not in the worker.
    json.dumps(args, allow_nan=False)

    backend = _backend_of(session)
    if backend is not None:
        await backend.ensure_available()
    else:
        # No runner in this process (a script, a test without the app): the row is still
        # queued, and any running runner's sweeper hands it to its backend.
        log.warning("job enqueued with no runner in this process", kind=kind)

    now = utcnow()
    job = Job(
        id=job_id or uuid.uuid4(),
        kind=kind,
        status=QUEUED,
        user_id=user_id,
        args=args,
        progress=0,
        result=None,
        error=None,
        attempts=0,
        max_attempts=spec.max_attempts,
        result_key=None,
        lease_until=None,
        started_at=None,
        finished_at=None,
        run_after=now,
        kicked_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    if backend is not None:
        _hand_off_after_commit(session, backend, job.id)
    return job


def _hand_off_after_commit(session: AsyncSession, backend: Backend, job_id: uuid.UUID) -> None:
    sync_session = session.sync_session
    pending: list[tuple[Backend, uuid.UUID]] = sync_session.info.setdefault(_PENDING, [])
    pending.append((backend, job_id))
    if sync_session.info.get(_HOOKED):
        return
    sync_session.info[_HOOKED] = True
    event.listen(sync_session, "after_commit", _after_commit)
    event.listen(sync_session, "after_rollback", _after_rollback)


def _after_commit(sync_session: Session) -> None:
    pending: list[tuple[Backend, uuid.UUID]] = sync_session.info.pop(_PENDING, [])
    by_backend: dict[int, tuple[Backend, list[uuid.UUID]]] = {}
    for backend, job_id in pending:
        by_backend.setdefault(id(backend), (backend, []))[1].append(job_id)
    for backend, ids in by_backend.values():
        backend.hand_off(ids)


def _after_rollback(sync_session: Session) -> None:
    # The rows are gone with the transaction; so is the hand-off.
    sync_session.info.pop(_PENDING, None)


@dataclass
class JobContext:
    """What a running job gets besides its arguments."""

    job_id: uuid.UUID
    user_id: int | None
    attempt: int
    kind: str
    settings: Settings
    http: httpx.AsyncClient
    mailer: Mailer
    sessionmaker: async_sessionmaker[AsyncSession]
    _progress: Callable[[int], Awaitable[None]]
    _storage: Storage | None = None
    result_key: str | None = None

    def session(self) -> AsyncSession:
        """A fresh session of the job's own (never a request's): `async with ctx.session() as
        session: ...`, and commit yourself."""
        return self.sessionmaker()

    async def set_progress(self, percent: int) -> None:
        """0..100, persisted on the job row (throttled: at most a few writes a second)."""
        await self._progress(max(0, min(100, int(percent))))

    def result_file_key(self, suffix: str = "") -> str:
        """The storage key reserved for this job's downloadable result. Write it through
        `ctx.storage`; it is served by GET /jobs/{id}/result once the job succeeded."""
        if suffix and (not suffix.startswith(".") or "/" in suffix or len(suffix) > 16):
            raise ValueError(f"invalid suffix {suffix!r}")
        self.result_key = f"jobs/{self.job_id}{suffix}"
        return self.result_key

    @property
    def storage(self) -> Storage:
        """The file storage, made from the settings when the process did not hand one over."""
        if self._storage is None:
            self._storage = open_storage(self.settings)
        return self._storage


def ensure_backend_available_error() -> ServiceUnavailable:
    return ServiceUnavailable(
        "the job queue is unreachable; nothing was done, retry shortly",
        code="job_queue_unavailable",
        retry_after=5,
    )
