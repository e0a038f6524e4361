"""Who is calling: `CurrentUser` and `CurrentSuperuser`, built on OAuth2 bearer tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from app.core.db import READ_ONLY, SessionDep
from app.core.dependencies import SettingsDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken, decode_access_token
from app.users.models import User

# auto_error=False: a missing token is our 401 problem, not FastAPI's bare {"detail": ...}.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_current_user(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    if not token:
        raise Unauthorized("not authenticated")
    try:
        claims = decode_access_token(token, secret=settings.secret)
    except InvalidToken as exc:
        raise Unauthorized("token is invalid or expired", code="invalid_token") from exc
    # The hot path of every authenticated request: one autocommit read (one round trip), then
    # the connection goes straight back to the pool while the endpoint does whatever it does
    # next. The user object stays usable (expire_on_commit=False) and stays in the session,
    # so an endpoint that changes it writes it in a transaction of its own.
    await session.connection(execution_options=READ_ONLY)
    user = await session.get(User, claims.user_id)
    await session.commit()
    # Checked on every request, so deactivating a user locks out their live tokens at once.
    if user is None or not user.is_active:
        raise Unauthorized("token is invalid or expired", code="invalid_token")
    return user


async def get_current_superuser(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_superuser:
        raise Forbidden("superuser privileges required")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentSuperuser = Annotated[User, Depends(get_current_superuser)]
