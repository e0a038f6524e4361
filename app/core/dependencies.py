"""The HTTP side of the kit: dependencies that hand out what the lifespan made, and the
request parameters every domain reads the same way (the page). `async def`, so
FastAPI calls them on the event loop instead of sending each one through the thread pool.

The modules they wrap (storage, pagination, rate limits, ...) import no FastAPI, so a service
can use them without knowing it is behind HTTP (the "services know no HTTP" contract).
The session dependency is the exception by design: it stays in app/core/db.py, beside the
engine it hands sessions from, because that file is the lifecycle pattern read top to bottom."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Query, Request

from app.core.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    PageParams,
    decode_cursor,
)
from app.core.ratelimit import RateLimiter
from app.core.security import PasswordHasher
from app.core.settings import Settings
from app.core.storage import Storage


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


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
HttpClientDep = Annotated[httpx.AsyncClient, Depends(get_http_client)]
StorageDep = Annotated[Storage, Depends(get_storage)]
PageParamsDep = Annotated[PageParams, Depends(page_params)]
