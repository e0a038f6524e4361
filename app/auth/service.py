"""Authentication: passwords to tokens, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.schemas import TokenPair
from app.core.errors import Forbidden, Unauthorized
from app.core.security import (
    PasswordHasher,
    create_access_token,
    hash_refresh_token,
    new_refresh_token,
)
from app.core.settings import Settings
from app.users import service as users
from app.users.models import RefreshToken, User

INVALID_CREDENTIALS = "incorrect email or password"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


async def authenticate(
    session: AsyncSession, email: str, password: str, hasher: PasswordHasher
) -> User:
    """The user for these credentials. An unknown email and a wrong password fail alike, in
    the same time (a dummy hash is verified); "inactive" is said only after a correct password."""
    user = await users.get_by_email(session, email)
    # End the read transaction before the slow hash: no connection (and on SQLite no write
    # lock) is held while a thread spends tens of milliseconds in Argon2.
    await session.commit()
    ok, rehashed = await hasher.verify(password, user.hashed_password if user else None)
    if not ok or user is None:
        raise InvalidCredentials()
    if not user.is_active:
        raise Forbidden("this account is inactive", code="inactive_user")
    if rehashed is not None:
        user.hashed_password = rehashed
    return user


async def issue_tokens(
    session: AsyncSession,
    user: User,
    settings: Settings,
    *,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    refresh = new_refresh_token()
    family_id = family_id or uuid.uuid4()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_refresh_token(refresh),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    await session.commit()
    return TokenPair(
        # Named after its session, so that ending the session (logout) ends this token too.
        access_token=create_access_token(
            user.id,
            secret=settings.secret,
            ttl_seconds=settings.access_token_ttl_seconds,
            session_id=family_id,
        ),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
    )


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await session.commit()


async def rotate(session: AsyncSession, presented: str, settings: Settings) -> TokenPair:
    """Spend a refresh token for a new pair. A spent or revoked token revokes its family."""
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(presented))
    )
    if token is None:
        raise Unauthorized("refresh token is not valid", code="invalid_token")
    # Plain values: a rollback below expires the ORM object, and reading an expired attribute
    # would be a lazy load (MissingGreenlet under asyncio).
    token_id, family_id, user_id = token.id, token.family_id, token.user_id
    now = datetime.now(UTC)
    if token.used_at is not None or token.revoked_at is not None:
        await _revoke_family(session, family_id)
        raise Unauthorized("refresh token was already used", code="token_reused")
    if token.expires_at <= now:
        raise Unauthorized("refresh token has expired", code="invalid_token")

    # Spend it with a conditional UPDATE: of two concurrent refreshes only one matches.
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        await _revoke_family(session, family_id)
        raise Unauthorized("refresh token was already used", code="token_reused")

    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        await session.commit()
        raise Unauthorized("refresh token is not valid", code="invalid_token")
    return await issue_tokens(session, user, settings, family_id=family_id)


async def logout(session: AsyncSession, presented: str) -> None:
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(presented))
    )
    if token is None:
        raise Unauthorized("refresh token is not valid", code="invalid_token")
    await _revoke_family(session, token.family_id)
