from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.auth.dependencies import CurrentSuperuser, CurrentUser
from app.core.db import SessionDep
from app.core.dependencies import PasswordHasherDep, SettingsDep
from app.core.errors import Forbidden, NotFound, problems
from app.core.pagination import Page, PageParamsDep
from app.users import service
from app.users.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problems(403, 409),
)
async def sign_up(
    body: UserCreate, session: SessionDep, settings: SettingsDep, hasher: PasswordHasherDep
) -> UserRead:
    if not settings.signup_enabled:
        raise Forbidden("sign-up is disabled", code="signup_disabled")
    user = await service.create_user(session, body, hasher)
    return service.to_read(user, settings.currency)


@router.get("/me", responses=problems(401))
async def read_me(user: CurrentUser, settings: SettingsDep) -> UserRead:
    return service.to_read(user, settings.currency)


@router.patch("/me", responses=problems(401, 403, 409))
async def update_me(
    body: UserUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    hasher: PasswordHasherDep,
) -> UserRead:
    updated = await service.update_user(session, user, body, hasher, actor=user)
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


@router.patch("/{user_id}", responses=problems(401, 403, 404, 409))
async def update_user(
    user_id: UserId,
    body: UserUpdate,
    caller: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    hasher: PasswordHasherDep,
) -> UserRead:
    _may_act_on(caller, user_id)
    target = caller if caller.id == user_id else await service.get_user(session, user_id)
    updated = await service.update_user(session, target, body, hasher, actor=caller)
    return service.to_read(updated, settings.currency)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404),
)
async def delete_user(user_id: UserId, _: CurrentSuperuser, session: SessionDep) -> None:
    await service.delete_user(session, user_id)


def _may_act_on(caller: CurrentUser, user_id: int) -> None:
    # Someone else's account is "not found", not "forbidden": its existence is not revealed.
    if caller.id != user_id and not caller.is_superuser:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
