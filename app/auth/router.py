from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.auth import service
from app.auth.schemas import RefreshRequest, TokenPair
from app.core.db import SessionDep
from app.core.dependencies import PasswordHasherDep, RateLimiterDep, SettingsDep
from app.core.errors import AppError, problems

router = APIRouter(prefix="/auth", tags=["auth"])

# RFC 6749 §5.1: a response carrying tokens must not be stored by any cache.
NO_STORE = {"Cache-Control": "no-store"}


class LoginForm(BaseModel):
    """The OAuth2 password form: `username` is the email."""

    model_config = ConfigDict(extra="ignore")

    username: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


@router.post(
    "/token",
    responses=problems(429, 503, invalid_credentials=401, inactive_user=403, hashing_busy=503),
)
async def login(
    form: Annotated[LoginForm, Form()],
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    hasher: PasswordHasherDep,
    limiter: RateLimiterDep,
) -> TokenPair:
    email = form.username.strip().lower()
    # The peer, or the address a trusted proxy forwarded (FORWARDED_ALLOW_IPS, applied by the
    # proxy-headers middleware before any route runs).
    client = request.client.host if request.client else "unknown"
    per_client = limiter.bucket(
        settings.login_failures_per_client, f"login:client:{client}", what="failed logins"
    )
    # Strict per (email, client); loose per email, counted only for attempts the strict one let
    # through, so one client alone can never use up the email's allowance and lock its owner out.
    per_email_and_client = limiter.bucket(
        settings.login_failures_per_email_and_client,
        f"login:email-client:{email}:{client}",
        what="failed logins",
    )
    per_email = limiter.bucket(
        settings.login_failures_per_email, f"login:email:{email}", what="failed logins"
    )
    await per_client.check()
    # Counted before the attempt, atomically: checking first and counting only after the slow
    # hash let a burst of parallel guesses all through. A correct password gives them back.
    await per_email_and_client.acquire()
    await per_email.acquire()
    try:
        user = await service.authenticate(session, email, form.password, hasher)
    except AppError:
        await per_client.hit()
        raise
    await per_email_and_client.clear()
    await per_email.clear()
    response.headers.update(NO_STORE)
    return await service.issue_tokens(session, user, settings)


@router.post("/refresh", responses=problems(401, token_reused=401))
async def refresh(
    body: RefreshRequest, response: Response, session: SessionDep, settings: SettingsDep
) -> TokenPair:
    response.headers.update(NO_STORE)
    return await service.rotate(session, body.refresh_token, settings)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401))
async def logout(body: RefreshRequest, session: SessionDep) -> None:
    await service.logout(session, body.refresh_token)
