from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from app.core.db import SessionDep
from app.core.dependencies import (
    PageParamsDep,
    PasswordHasherDep,
    RateLimiterDep,
    SettingsDep,
    StorageDep,
)
from app.core.errors import Forbidden, NotFound, problems
from app.core.pagination import Page
from app.core.ratelimit import Bucket, RateLimiter
from app.core.settings import Settings
from app.users import service
from app.users.dependencies import AccountDataErasersDep, CurrentSuperuser, CurrentUser
from app.users.models import User
from app.users.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(403, 409, 429, 503, hashing_busy=503),
)
async def sign_up(
    body: UserCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    hasher: PasswordHasherDep,
    limiter: RateLimiterDep,
) -> UserRead:
    if not settings.signup_enabled:
        raise Forbidden("sign-up is disabled", code="signup_disabled")
    # Each sign-up costs a password hash: without a limit, anyone can keep the hashing
    # threads busy and slow every sign-in.
    client = request.client.host if request.client else "unknown"
    await limiter.bucket(settings.signup_rate_limit, f"signup:{client}", what="sign-ups").acquire()
    user = await service.create_user(session, body, hasher)
    return service.to_read(user, settings.currency)


@router.get("/me", responses=problems(401))
async def read_me(user: CurrentUser, settings: SettingsDep) -> UserRead:
    return service.to_read(user, settings.currency)


@router.patch("/me", responses=problems(401, 403, 409, 429, 503, hashing_busy=503))
async def update_me(
    body: UserUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    hasher: PasswordHasherDep,
    limiter: RateLimiterDep,
) -> UserRead:
    updated = await service.update_user(
        session,
        user,
        body,
        hasher,
        actor=user,
        password_checks=_password_checks(limiter, settings, user),
    )
    return service.to_read(updated, settings.currency)


@router.get("", responses=problems(401, 403))
async def list_users(
    _: CurrentSuperuser,
    session: SessionDep,
    settings: SettingsDep,
    page: PageParamsDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
) -> Page[UserRead]:
    users, next_cursor = await service.list_users(session, page, email=email)
    return Page(
        items=[service.to_read(u, settings.currency) for u in users], next_cursor=next_cursor
    )


@router.get("/{user_id}", responses=problems(401, 404))
async def read_user(
    user_id: UserId, caller: CurrentUser, session: SessionDep, settings: SettingsDep
) -> UserRead:
    _may_act_on(caller, user_id)
    return service.to_read(await service.get_user(session, user_id), settings.currency)


@router.patch("/{user_id}", responses=problems(401, 403, 404, 409, 429, 503, hashing_busy=503))
async def update_user(
    user_id: UserId,
    body: UserUpdate,
    caller: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    hasher: PasswordHasherDep,
    limiter: RateLimiterDep,
) -> UserRead:
    _may_act_on(caller, user_id)
    target = caller if caller.id == user_id else await service.get_user(session, user_id)
    updated = await service.update_user(
        session,
        target,
        body,
        hasher,
        actor=caller,
        password_checks=_password_checks(limiter, settings, caller),
    )
    return service.to_read(updated, settings.currency)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, balance_not_zero=409, cannot_delete_self=409),
)
async def delete_user(
    user_id: UserId,
    caller: CurrentSuperuser,
    session: SessionDep,
    storage: StorageDep,
    erasers: AccountDataErasersDep,
) -> None:
    """Deactivate and anonymise the account and delete its files; its transactions stay."""
    await service.delete_user(session, storage, user_id, actor=caller, erasers=erasers)


def _password_checks(limiter: RateLimiter, settings: Settings, caller: User) -> Bucket:
    # Per user, not per client: guessing one account's password from many addresses is what
    # this limit is for.
    return limiter.bucket(
        settings.password_checks_per_user, f"password-check:{caller.id}", what="password checks"
    )


def _may_act_on(caller: CurrentUser, user_id: int) -> None:
    # Someone else's account is "not found", not "forbidden": its existence is not revealed.
    if caller.id != user_id and not caller.is_superuser:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
