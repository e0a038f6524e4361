"""Long-running tools: the request validates the arguments, queues a job and answers 202; the
job runs the function and its result is the return value (read back through `GET /jobs/{id}`).

The arguments are validated before the job is queued (invalid ones are a 422, never a failed
job), travel in the job as JSON, and are validated again when the job runs. The caller and the
injected values are provided again inside the job, from its context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from typing import Any

import structlog
from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import NoMatchFound

from app.core.errors import AppError
from app.expose.errors import ExposeError
from app.expose.injection import Caller
from app.expose.tool import Tool
from app.jobs.queue import JobContext, JobFailed, enqueue, job_kind

log = structlog.get_logger("app.expose")

DEFAULT_JOB_TIME_LIMIT = 600.0

# One job function per (kind, function), kept across Exposers: a kind is registered once per
# process, and a test that builds several apps exposes the same functions again.
_JOB_FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Awaitable[Any]]]] = {}


async def submit_job(
    session: AsyncSession, tool: Tool, arguments: BaseModel, *, user_id: int | None
) -> Any:
    """Queue a long-running tool's job in the request's transaction and commit it: the job is
    handed to the runner only once the row is committed."""
    job = await enqueue(
        session,
        kind=tool.kind,
        args={"arguments": arguments.model_dump(mode="json", by_alias=True)},
        user_id=user_id,
    )
    await session.commit()
    return job


def point_at_job(request: Request, response: Response, job_id: object) -> None:
    """A 202 carries `Location`: the app's job route (named `read_job`), when it has one."""
    with suppress(NoMatchFound):
        response.headers["Location"] = str(request.app.url_path_for("read_job", job_id=str(job_id)))


def register_job_kind(tool: Tool, caller: Caller | None, time_limit: float) -> None:
    """Make `tool.kind` a job kind that runs the tool. A plain function may not be safe to run
    twice: one attempt."""

    # The arguments travel as one object, so no parameter name can collide with `ctx`.
    async def run_tool(ctx: JobContext, *, arguments: dict[str, Any]) -> Any:
        try:
            validated = tool.signature.arguments_model.model_validate(arguments)
        except ValidationError as exc:
            raise JobFailed("the job's arguments no longer fit the tool") from exc
        async with AsyncExitStack() as stack:
            provided = await _provided_in_job(tool, caller, ctx, stack)
            try:
                value = await tool.call(validated, provided)
            except Exception as exc:
                raise _job_failure(tool, exc, ctx) from exc
        return tool.signature.result_adapter.dump_python(value, mode="json")

    run_tool.__name__ = run_tool.__qualname__ = f"run_{tool.name}"
    job_kind(tool.kind, retryable=False, time_limit=time_limit)(
        _shared_job_function(tool.kind, tool.func, run_tool)
    )


async def _provided_in_job(
    tool: Tool, caller: Caller | None, ctx: JobContext, stack: AsyncExitStack
) -> dict[str, Any]:
    provided: dict[str, Any] = {}
    for param_name, injectable in tool.signature.injected.items():
        assert injectable.in_job is not None  # checked at definition
        provided[param_name] = await injectable.in_job(ctx, stack)
    if tool.signature.caller_params:
        assert caller is not None
        who = await _load_caller(ctx, caller)
        provided.update(dict.fromkeys(tool.signature.caller_params, who))
    return provided


def _job_failure(tool: Tool, exc: Exception, ctx: JobContext) -> JobFailed:
    """The function's exception as the job's failure: its problem, as over HTTP."""
    problem = tool.problem_for(exc)
    if problem is None:
        # The traceback goes to the log, the job's owner reads only `internal_error` (a
        # message may hold a secret or a SQL text).
        log.exception("tool raised", tool=tool.name, job_id=str(ctx.job_id))
        result = {"status": 500, "code": "internal_error", "detail": "internal server error"}
        return JobFailed("internal error", result=result)
    result = {"status": problem.status_code, "code": problem.code, "detail": problem.detail}
    return JobFailed(problem.detail, result=result)


def _shared_job_function(
    kind: str, func: Callable[..., Any], run: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    existing = _JOB_FUNCTIONS.get(kind)
    if existing is not None:
        if existing[0] is not func:
            raise ExposeError(f"job kind {kind!r} already runs {existing[0]!r}")
        return existing[1]
    _JOB_FUNCTIONS[kind] = (func, run)
    return run


async def _load_caller(ctx: JobContext, caller: Caller) -> Any:
    if ctx.user_id is None:
        raise JobFailed("this tool needs the user who started it, and the job has none")
    async with ctx.session() as session:
        try:
            who = await caller.load(session, ctx.user_id)
        except AppError as exc:
            raise JobFailed(f"the user who started this job is gone: {exc.detail}") from exc
        await session.commit()
    if who is None:
        raise JobFailed("the user who started this job is gone")
    return who
