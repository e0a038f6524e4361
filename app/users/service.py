"""Users: the rules and the transactions. No FastAPI in here; errors are `AppError` kinds."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.money import format_minor
from app.core.pagination import PageParams, encode_cursor
from app.core.partial import apply_patch, changes
from app.core.ratelimit import Bucket
from app.core.security import PasswordHasher
from app.core.storage import Storage
from app.users.hot_read import HotRead
from app.users.models import RefreshToken, User
from app.users.schemas import UserCreate, UserRead, UserUpdate

SUPERUSER_ONLY_FIELDS = frozenset({"is_active", "is_superuser"})
MAX_ID = 2**63 - 1  # BIGINT


# Whether the session (refresh-token family) an access token names was ended: read in the same
# round trip as the user.
_SESSION_ENDED = (
    exists()
    .where(RefreshToken.family_id == bindparam("session_id"), RefreshToken.revoked_at.is_not(None))
    .label("session_ended")
)
# The columns of `users`, read with no session, no identity map and no ORM loading.
_USER_BY_ID = HotRead(
    select(User.__table__, _SESSION_ENDED).where(User.__table__.c.id == bindparam("user_id"))
)


async def load_user_snapshot(
    engine: AsyncEngine, user_id: int, *, session_id: uuid.UUID | None = None
) -> User | None:
    """The hot path of every authenticated request: one autocommit read (one round trip, no
    BEGIN/COMMIT) on a connection that goes straight back to the pool (see `HotRead`).

    The result is a *detached* `User`: readable everywhere, and a service that changes it
    attaches it with `session.add(user)` first. Without pool pre-ping, this read is also the
    request's liveness check: a dead connection is discarded and the read retried once on a
    fresh one, which is safe for a plain SELECT. None when there is no such user, or when
    `session_id` names a session that was ended.
    """
    row = await _USER_BY_ID.one_or_none(engine, user_id=user_id, session_id=session_id)
    if row is None or row.pop("session_ended"):
        return None
    user = User(**row)
    make_transient_to_detached(user)
    return user


def to_read(user: User, currency: str) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        name=user.name,
        age=user.age,
        is_active=user.is_active,
        is_superuser=user.is_superuser,
        balance=format_minor(user.balance_minor),
        currency=currency,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


async def create_user(
    session: AsyncSession,
    data: UserCreate,
    hasher: PasswordHasher,
    *,
    is_superuser: bool = False,
) -> User:
    # Hash before touching the database: no connection is held during the slow part.
    hashed = await hasher.hash(data.password)
    user = User(
        email=data.email,
        hashed_password=hashed,
        name=data.name,
        age=data.age,
        is_superuser=is_superuser,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"email {data.email} is already registered", code="email_taken") from exc
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return user


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.lower()))


async def list_users(
    session: AsyncSession, page: PageParams, *, email: str | None = None
) -> tuple[Sequence[User], str | None]:
    query = select(User).order_by(User.id).limit(page.limit + 1)
    if page.cursor is not None:
        after = page.cursor.get("id")
        # `type() is int`: a JSON `true` is a Python int too. Out of BIGINT range, the driver
        # would raise (OverflowError, DataError) and the client would get a 500.
        if type(after) is not int or not 0 <= after <= MAX_ID:
            raise InvalidInput("cursor is not valid", code="invalid_cursor")
        query = query.where(User.id > after)
    if email is not None:
        query = query.where(User.email == email.lower())
    rows = (await session.scalars(query)).all()
    items, more = rows[: page.limit], len(rows) > page.limit
    return items, (encode_cursor({"id": items[-1].id}) if more else None)


async def update_user(
    session: AsyncSession,
    user: User,
    patch: UserUpdate,
    hasher: PasswordHasher,
    *,
    actor: User,
    password_checks: Bucket | None = None,
) -> User:
    """`password_checks`: the caller's allowance of `current_password` checks."""
    session.add(user)  # the caller's own snapshot (see load_user_snapshot) arrives detached
    sent = changes(patch)
    if SUPERUSER_ONLY_FIELDS & sent.keys() and not actor.is_superuser:
        raise Forbidden("only a superuser may change is_active or is_superuser")

    if "password" in sent:
        if not actor.is_superuser:
            # Counted before the check, atomically (parallel guesses cannot outrun it); a
            # correct password gives the allowance back.
            if password_checks is not None:
                await password_checks.acquire()
            current = sent.get("current_password")
            ok, _ = await hasher.verify(current or "", user.hashed_password if current else None)
            if not ok:
                raise Forbidden(
                    "changing the password requires the correct current_password",
                    code="current_password_invalid",
                )
            if password_checks is not None:
                await password_checks.clear()
        user.hashed_password = await hasher.hash(sent["password"])
        await end_every_session(session, user)

    apply_patch(user, patch, exclude={"password", "current_password"})
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(
            f"email {sent.get('email')} is already registered", code="email_taken"
        ) from exc
    return user


async def end_every_session(session: AsyncSession, user: User) -> None:
    """In the caller's transaction: every refresh-token family of the user is revoked and
    every access token issued until now stops working (see `tokens_valid_after`)."""
    now = utcnow()
    user.tokens_valid_after = now
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# Erases what another domain keeps of an account (its files), in the deletion's transaction,
# and returns the storage keys whose bytes to delete once it has committed. Registered by the
# app factory (app.main), so that `users` never imports the domains built on it.
AccountDataEraser = Callable[[AsyncSession, int], Awaitable[list[str]]]


async def delete_user(
    session: AsyncSession,
    storage: Storage,
    user_id: int,
    *,
    actor: User,
    erasers: Sequence[AccountDataEraser] = (),
) -> None:
    """Deactivate and anonymise the account, end its sessions and erase its data; never touch
    the ledger (its transactions stay, so every balance still adds up and every transfer keeps
    both sides). Refused while the balance is not zero: that money would vanish."""
    if user_id == actor.id:
        raise Conflict("you cannot delete your own account", code="cannot_delete_self")
    # One conditional UPDATE: a payment crediting the account at the same moment either lands
    # first (and this refuses) or finds the account inactive (and is refused).
    anonymised = await session.execute(
        update(User)
        .where(User.id == user_id, User.balance_minor == 0)
        .values(
            email=f"deleted-{user_id}@deleted.invalid",
            name="Deleted user",
            age=None,
            is_active=False,
            is_superuser=False,
            tokens_valid_after=utcnow(),
        )
        .returning(User.id)
        .execution_options(synchronize_session=False)
    )
    if anonymised.scalar_one_or_none() is None:
        exists = await session.scalar(select(User.id).where(User.id == user_id))
        await session.rollback()
        if exists is None:
            raise NotFound(f"user {user_id} not found", code="user_not_found")
        raise Conflict(
            f"user {user_id} still has a balance; pay it out first", code="balance_not_zero"
        )
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    keys = [key for erase in erasers for key in await erase(session, user_id)]
    await session.commit()
    # After the commit: a failure here leaves unreferenced bytes, never a row without bytes.
    for key in keys:
        await storage.delete(key)


async def ensure_superuser(
    session: AsyncSession, email: str, password: str, hasher: PasswordHasher
) -> bool:
    """Create the superuser unless that email exists. True when it was created."""
    exists = await get_by_email(session, email) is not None
    await session.commit()  # no transaction (on SQLite: no write lock) held while hashing
    if exists:
        return False
    data = UserCreate(email=email, password=password, name="Administrator")
    try:
        await create_user(session, data, hasher, is_superuser=True)
    except Conflict:  # another worker process created it a moment ago
        return False
    return True
