"""Passwords and tokens.

Argon2id (pwdlib) runs in a worker thread under its own small limiter: one hash costs tens of
milliseconds of CPU and would stall every request on the event loop. Access tokens are short JWTs
with the algorithm pinned; refresh tokens are opaque random strings stored only as a SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.errors import ServiceUnavailable

JWT_ALGORITHM = "HS256"
# A user id as a token subject: a positive BIGINT in ASCII digits.
SUBJECT = re.compile(r"[1-9][0-9]{0,18}")
MAX_USER_ID = 2**63 - 1
ACCESS_TOKEN_TYPE = "access"
# Concurrent hashes per process: each takes ARGON2_MEMORY_KIB of memory and a core.
HASHING_THREADS = 2

T = TypeVar("T")


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or of the wrong type."""


class PasswordHasher:
    """Argon2id in worker threads. With `queue_limit`, a call that would wait behind that many
    others is refused at once with a 503 (`hashing_busy`, Retry-After) instead of queueing: a
    flood of sign-ups or guesses cannot delay everyone's sign-in by seconds."""

    def __init__(self, *, time_cost: int, memory_kib: int, queue_limit: int | None = None) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self._limiter: anyio.CapacityLimiter | None = None
        self._queue_limit = queue_limit
        self._in_flight = 0  # running or waiting for a thread
        # Verified when the email is unknown, so both failures cost the same time.
        self._dummy_hash: str | None = None

    def _thread_limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(HASHING_THREADS)
        return self._limiter

    async def _in_thread(self, function: Callable[..., T], *args: str) -> T:
        limit = self._queue_limit
        if limit is not None and self._in_flight >= HASHING_THREADS + limit:
            raise ServiceUnavailable(
                "too many password checks are waiting; retry shortly",
                retry_after=1,
                code="hashing_busy",
            )
        self._in_flight += 1
        try:
            return await anyio.to_thread.run_sync(function, *args, limiter=self._thread_limiter())
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        return await self._in_thread(self._hash.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one uses outdated parameters)."""
        if hashed is None and self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        target = hashed if hashed is not None else self._dummy_hash
        assert target is not None
        ok, updated = await self._in_thread(self._hash.verify_and_update, password, target)
        return (ok and hashed is not None), updated


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    issued_at: datetime
    expires_at: datetime
    # The session (refresh-token family) the token was issued with; None for a token from
    # before sessions were named.
    session_id: uuid.UUID | None = None


def create_access_token(
    user_id: int, *, secret: str, ttl_seconds: int, session_id: uuid.UUID | None = None
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),  # PyJWT >= 2.10 requires a string subject
        "type": ACCESS_TOKEN_TYPE,
        # To the microsecond (a JWT NumericDate may have a fraction): a token issued just
        # after a password change, in the same second, must still count as issued after it.
        "iat": now.timestamp(),
        "exp": now.timestamp() + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],  # never taken from the token's own header
            options={"require": ["exp", "iat", "sub", "type"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.get("type") != ACCESS_TOKEN_TYPE:
        raise InvalidToken("not an access token")
    subject = claims["sub"]
    # ASCII digits only (str.isdigit() also takes superscripts and Arabic-Indic digits), and
    # an id the BIGINT primary key can hold: anything else would fail in int() or in the
    # database, as a 500.
    if not (isinstance(subject, str) and SUBJECT.fullmatch(subject)):
        raise InvalidToken("bad subject")
    user_id = int(subject)
    if user_id > MAX_USER_ID:
        raise InvalidToken("bad subject")
    try:
        return AccessClaims(
            user_id=user_id,
            issued_at=datetime.fromtimestamp(claims["iat"], UTC),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            session_id=uuid.UUID(claims["sid"]) if "sid" in claims else None,
        )
    except (TypeError, ValueError, AttributeError, OverflowError, OSError) as exc:
        raise InvalidToken("bad claims") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # A fast hash is right here: the token is 256 random bits, not a guessable password.
    return hashlib.sha256(token.encode()).hexdigest()
