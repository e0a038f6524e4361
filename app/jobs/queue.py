"""Declaring and queueing jobs: the interface every domain uses.

    @job_kind("exports.transactions", time_limit=600)
    async def export(ctx: JobContext, *, fmt: str) -> dict[str, Any]: ...

    job = await enqueue(session, kind="exports.transactions", args={...}, user_id=user.id)
    await session.commit()      # the hand-off to the broker happens here, and only if it commits

A job is first a row in `jobs`, written in the caller's transaction, so the caller never fails
because the queue is down: the row is handed to the broker after the commit, and a hand-off
that did not get through is made again by app.jobs.recovery once the broker answers.
"""

from __future__ import annotations

import inspect
import json
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.storage import Storage, open_storage
from app.jobs.models import MAX_KIND_LENGTH, QUEUED, Job

if TYPE_CHECKING:
    import httpx

    from app.core.email import Mailer
    from app.core.settings import Settings

log = structlog.get_logger("app.jobs")


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

    retryable: an unexpected exception (or the time limit) is retried with back-off (from
    `retry_delay` seconds) until `max_attempts`; raising `JobFailed` never is. Not retryable:
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


class HandOff(Protocol):
    """What `enqueue` needs from the running job runner (app.jobs.runner)."""

    def hand_off(self, jobs: list[tuple[uuid.UUID, str]]) -> None:
        """Called right after the transaction that added these (id, kind) jobs committed."""


# The running runner of each engine: `enqueue` receives only a session, and a session knows
# its engine. Registered by the runner when it starts, dropped when it stops.
_RUNNERS: weakref.WeakKeyDictionary[Engine, HandOff] = weakref.WeakKeyDictionary()
_PENDING = "app.jobs.pending"
_HOOKED = "app.jobs.hooked"


def register_runner(engine: AsyncEngine, runner: HandOff) -> None:
    _RUNNERS[engine.sync_engine] = runner


def unregister_runner(engine: AsyncEngine, runner: HandOff) -> None:
    if _RUNNERS.get(engine.sync_engine) is runner:
        del _RUNNERS[engine.sync_engine]


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

    The broker is handed the job only after `session` commits, never if it rolls back. Nothing
    here talks to the broker: a broker that is down delays the job, never the caller. The
    caller commits.
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
    bind = session.bind
    runner = _RUNNERS.get(bind.sync_engine) if isinstance(bind, AsyncEngine) else None
    if runner is None:
        # No runner in this process (a script): the row is queued, and any running runner's
        # recovery hands it to the broker.
        log.warning("job enqueued with no runner in this process", kind=kind)
    else:
        _hand_off_after_commit(session.sync_session, runner, job.id, kind)
    return job


def _hand_off_after_commit(session: Session, runner: HandOff, job_id: uuid.UUID, kind: str) -> None:
    session.info.setdefault(_PENDING, []).append((runner, job_id, kind))
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    by_runner: dict[int, tuple[HandOff, list[tuple[uuid.UUID, str]]]] = {}
    for runner, job_id, kind in session.info.pop(_PENDING, []):
        by_runner.setdefault(id(runner), (runner, []))[1].append((job_id, kind))
    for runner, jobs in by_runner.values():
        runner.hand_off(jobs)


def _after_rollback(session: Session) -> None:
    # The rows are gone with the transaction; so is the hand-off.
    session.info.pop(_PENDING, None)


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
