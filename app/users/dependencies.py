"""Who is calling: `CurrentUser` and `CurrentSuperuser`, built on OAuth2 bearer tokens.

Here, in `users`, so that every domain (auth included) can depend on "the current user"
without `users` ever importing `auth`: imports flow auth -> users -> core.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.core.db import Database
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken, decode_access_token
from app.core.settings import Settings
from app.users.models import User
from app.users.service import AccountDataEraser, load_user_snapshot

# auto_error=False: a missing token is our 401 problem, not FastAPI's bare {"detail": ...}.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_current_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    if not token:
        raise Unauthorized("not authenticated")
    settings: Settings = request.app.state.settings
    try:
        claims = decode_access_token(token, secret=settings.secret)
    except InvalidToken as exc:
        raise Unauthorized("token is invalid or expired", code="invalid_token") from exc
    database: Database = request.app.state.db
    # None also when the token's session was ended (logout, a reused refresh token).
    user = await load_user_snapshot(database.engine, claims.user_id, session_id=claims.session_id)
    # Checked on every request, so deactivating a user, or changing their password, locks out
    # their live tokens at once.
    if user is None or not user.is_active or issued_before_revocation(user, claims.issued_at):
        raise Unauthorized("token is invalid or expired", code="invalid_token")
    return user


def issued_before_revocation(user: User, issued_at: datetime) -> bool:
    return user.tokens_valid_after is not None and issued_at < user.tokens_valid_after


async def get_current_superuser(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_superuser:
        raise Forbidden("superuser privileges required")
    return user


async def get_account_data_erasers(request: Request) -> Sequence[AccountDataEraser]:
    """What other domains keep of an account, to erase with it (set by the app factory)."""
    erasers: Sequence[AccountDataEraser] = getattr(request.app.state, "account_data_erasers", ())
    return erasers


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentSuperuser = Annotated[User, Depends(get_current_superuser)]
AccountDataErasersDep = Annotated[Sequence[AccountDataEraser], Depends(get_account_data_erasers)]
