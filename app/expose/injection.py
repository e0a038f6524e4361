"""What a tool receives from the app rather than from the client: the caller, a database
session, the shared HTTP client, the settings. A parameter is injected by its type, in a
request through a FastAPI dependency and in a long-running tool's job from the job's context."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import get_session
from app.core.dependencies import get_app_settings, get_http_client
from app.core.settings import Settings
from app.jobs.queue import JobContext

JobProvider = Callable[[JobContext, AsyncExitStack], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Injectable:
    """A parameter type that is provided by the app rather than sent by the client.

    `dependency` is the FastAPI dependency that provides it during a request; `in_job`
    provides it inside a long-running tool's job (None: such tools cannot take it); `async_only`
    refuses it to sync functions (an AsyncSession is of no use in a worker thread)."""

    type: type[Any]
    dependency: Callable[..., Any]
    in_job: JobProvider | None = None
    async_only: bool = False
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling: every tool route requires it (signed-in only), a parameter of this type
    receives it, and a long-running tool's job gets it back from the job's `user_id`."""

    type: type[Any]
    dependency: Callable[..., Any]
    user_id: Callable[[Any], int]
    load: Callable[[AsyncSession, int], Awaitable[Any]]


async def _job_session(ctx: JobContext, stack: AsyncExitStack) -> AsyncSession:
    return await stack.enter_async_context(ctx.session())


async def _job_http(ctx: JobContext, stack: AsyncExitStack) -> httpx.AsyncClient:
    return ctx.http


async def _job_settings(ctx: JobContext, stack: AsyncExitStack) -> Settings:
    return ctx.settings


DEFAULT_INJECTABLES: tuple[Injectable, ...] = (
    Injectable(AsyncSession, get_session, _job_session, async_only=True, label="database session"),
    Injectable(httpx.AsyncClient, get_http_client, _job_http, async_only=True, label="HTTP client"),
    Injectable(Settings, get_app_settings, _job_settings, label="settings"),
)


def dependency_param(name: str, annotation: Any, dependency: Callable[..., Any]) -> Any:
    """A keyword-only endpoint parameter that FastAPI fills from `dependency`."""
    # The session closes as the endpoint returns, before the response is sent.
    scope: Literal["function"] | None = "function" if dependency is get_session else None
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, Depends(dependency, scope=scope)],
    )
