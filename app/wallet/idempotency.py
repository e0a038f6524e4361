"""Idempotency records: an `Idempotency-Key` claimed, completed and replayed in the database.

A request's key comes with its fingerprint, a keyed hash of the operation and its body, which
tells "the same request again" from "another request with the same key".

The record is completed in the same transaction as the money it guards: either both commit or
neither does, so a key never claims work that did not happen, and work is never done twice.

    claim()            take the key inside the caller's transaction (INSERT ... ON CONFLICT DO
                       NOTHING); or learn that it was used: replay, 409 in flight, 422 reused
    complete()         store the response, in the transaction that moves the money
    record_outcome()   store a refusal after the work's transaction was rolled back
    release()          give the key back: the work failed in a way worth retrying (gateway down)

What is stored and replayed: the first decided answer, success or refusal (402 declined, 400
insufficient funds, 404 payee not found), as Stripe does, so the same key and body always get
the same answer. What is not: validation errors (the key is never looked at), 409/422 about
the key itself, and transient failures (502/504, 5xx) after which the key is released so the
client can retry with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.errors import AppError, Conflict, InvalidInput
from app.wallet.models import IdempotencyRecord

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255  # Stripe's limit; a UUID is the usual choice


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    fingerprint: str


def fingerprint(secret: str, scope: str, data: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the operation (`scope`, e.g. "POST /payments") and its canonical JSON.

    Keyed, not a bare hash: the data may hold a card number, and a plain SHA-256 of one is
    reversed by trying the few million numbers that share its brand prefix and last four."""
    canonical = json.dumps(
        {"scope": scope, "data": data}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def idempotent_request(
    key: str | None, *, secret: str, scope: str, data: Mapping[str, Any]
) -> IdempotentRequest | None:
    """The key and fingerprint of a request, or None when the client sent no key."""
    if key is None:
        return None
    return IdempotentRequest(key=key, fingerprint=fingerprint(secret, scope, data))


# A key replays for 24 h; after that it is free again.
KEY_TTL = timedelta(hours=24)
# A claim in flight lapses after this, so a process that died mid-request does not hold the key
# forever. Longer than the gateway's timeout plus its retries.
CLAIM_LEASE = timedelta(seconds=120)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


class ReplayedProblem(AppError):
    """A refusal replayed from an idempotency record: same status, code and detail."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail, code=code, headers={REPLAYED_HEADER: "true"})
        self.status_code = status


def problem_body(error: AppError) -> dict[str, Any]:
    return {"status": error.status_code, "code": error.code, "detail": error.detail}


def replay_error(stored: StoredResponse) -> ReplayedProblem:
    return ReplayedProblem(stored.status, str(stored.body["code"]), str(stored.body["detail"]))


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(IdempotencyRecord)


async def claim(
    session: AsyncSession, user_id: int, request: IdempotentRequest
) -> StoredResponse | None:
    """Take `request.key` for this user inside the session's transaction.

    None: the key is ours; do the work, then `complete()` in the same transaction (or
    `release()`). A StoredResponse: this very request was answered before; replay it.
    Raises 409 `idempotency_in_progress` while another request holds the key, 422
    `idempotency_key_reused` when the key came with a different request.
    """
    for _ in range(3):
        now = utcnow()
        # ON CONFLICT DO NOTHING, not try/except IntegrityError: a failed INSERT would abort the
        # whole transaction on PostgreSQL. On PostgreSQL it also waits for a concurrent,
        # uncommitted claim of the same key to commit or roll back before deciding.
        inserted = await session.execute(
            _insert(session)
            .values(
                user_id=user_id,
                key=request.key,
                fingerprint=request.fingerprint,
                created_at=now,
                locked_until=now + CLAIM_LEASE,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
        )
        if inserted.rowcount == 1:  # type: ignore[attr-defined]
            return None

        record = (
            await session.execute(
                select(IdempotencyRecord)
                .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == request.key)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if record is None:  # released between our INSERT and SELECT: try again
            continue
        if record.created_at < now - KEY_TTL:
            await session.execute(_match(user_id, request.key, delete(IdempotencyRecord)))
            continue
        if record.fingerprint != request.fingerprint:
            raise InvalidInput(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
            )
        if record.response_status is not None:
            return StoredResponse(record.response_status, json.loads(record.response_body or "{}"))
        if record.locked_until is not None and record.locked_until < now:
            # Its owner died mid-request (the money was not moved: that would have completed the
            # record in the same transaction). Take it over, unless someone else just did.
            taken = await session.execute(
                _match(user_id, request.key, update(IdempotencyRecord))
                .where(
                    IdempotencyRecord.response_status.is_(None),
                    IdempotencyRecord.locked_until == record.locked_until,
                )
                .values(locked_until=now + CLAIM_LEASE, created_at=now)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return None
        raise Conflict(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            code="idempotency_in_progress",
        )
    raise Conflict(
        "a request with this Idempotency-Key is still in progress; retry shortly",
        code="idempotency_in_progress",
    )


def _match(user_id: int, key: str, statement: Any) -> Any:
    return statement.where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)


async def complete(
    session: AsyncSession, user_id: int, key: str, status: int, body: dict[str, Any]
) -> None:
    """Store the answer to replay. Call it in the transaction that does the work."""
    await session.execute(
        _match(user_id, key, update(IdempotencyRecord)).values(
            response_status=status,
            response_body=json.dumps(body, separators=(",", ":")),
            locked_until=None,
        )
    )


async def record_outcome(
    session: AsyncSession, user_id: int, request: IdempotentRequest, status: int, body: Any
) -> None:
    """Store a refusal after the work's transaction was rolled back (taking its claim with it).
    If another request took the key in between, its answer stands and this one is not kept."""
    await session.execute(
        _insert(session)
        .values(
            user_id=user_id,
            key=request.key,
            fingerprint=request.fingerprint,
            created_at=utcnow(),
            response_status=status,
            response_body=json.dumps(body, separators=(",", ":")),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
    )


async def release(session: AsyncSession, user_id: int, key: str) -> None:
    """Give an unfinished key back (the caller commits)."""
    await session.execute(
        _match(user_id, key, delete(IdempotencyRecord)).where(
            IdempotencyRecord.response_status.is_(None)
        )
    )
