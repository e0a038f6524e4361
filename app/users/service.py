"""Users: the rules and the transactions. No FastAPI in here; errors are `AppError` kinds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.money import format_minor
from app.core.pagination import PageParams, encode_cursor
from app.core.partial import apply_patch, changes
from app.core.security import PasswordHasher
from app.users.hot_read import HotRead
from app.users.models import User
from app.users.schemas import UserCreate, UserRead, UserUpdate

SUPERUSER_ONLY_FIELDS = frozenset({"is_active", "is_superuser"})
MAX_ID = 2**63 - 1  # BIGINT


# The columns of `users`, read with no session, no identity map and no ORM loading.
_USER_BY_ID = HotRead(select(User.__table__).where(User.__table__.c.id == bindparam("user_id")))


async def load_user_snapshot(engine: AsyncEngine, user_id: int) -> User | None:
    """The hot path of every authenticated request: one autocommit read (one round trip, no
    BEGIN/COMMIT) on a connection that goes straight back to the pool (see `HotRead`).

    The result is a *detached* `User`: readable everywhere, and a service that changes it
    attaches it with `session.add(user)` first. Without pool pre-ping, this read is also the
    request's liveness check: a dead connection is discarded and the read retried once on a
    fresh one, which is safe for a plain SELECT.
    """
    row = await _USER_BY_ID.one_or_none(engine, user_id=user_id)
    if row is None:
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
) -> User:
    session.add(user)  # the caller's own snapshot (see load_user_snapshot) arrives detached
    sent = changes(patch)
    if SUPERUSER_ONLY_FIELDS & sent.keys() and not actor.is_superuser:
        raise Forbidden("only a superuser may change is_active or is_superuser")

    if "password" in sent:
        if not actor.is_superuser:
            current = sent.get("current_password")
            ok, _ = await hasher.verify(current or "", user.hashed_password if current else None)
            if not ok:
                raise Forbidden(
                    "changing the password requires the correct current_password",
                    code="current_password_invalid",
                )
        user.hashed_password = await hasher.hash(sent["password"])

    apply_patch(user, patch, exclude={"password", "current_password"})
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(
            f"email {sent.get('email')} is already registered", code="email_taken"
        ) from exc
    return user


async def delete_user(session: AsyncSession, user_id: int) -> None:
    result = await session.execute(delete(User).where(User.id == user_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.rollback()
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    await session.commit()


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
