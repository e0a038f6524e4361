"""Dependencies that hand out what the lifespan made. `async def`, so FastAPI calls them on the
event loop instead of sending each one through the thread pool."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from app.core.ratelimit import RateLimiter
from app.core.security import PasswordHasher
from app.core.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


async def get_http_client(request: Request) -> httpx.AsyncClient:
    """The one outbound HTTP client, made in the lifespan (pooled connections, closed at stop)."""
    client: httpx.AsyncClient = request.app.state.http
    return client


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
HttpClientDep = Annotated[httpx.AsyncClient, Depends(get_http_client)]
