"""Plain Python functions -> validated, documented, authorised endpoints, in one line.

    tools = Exposer(prefix="/tools", caller=..., job_schema=JobRead)

    @tools.expose
    def amortisation_schedule(principal: Decimal, annual_rate: Decimal, months: int) -> Schedule:
        "Monthly payments of a fixed-rate loan."

    app.include_router(tools.router)    # POST /tools/amortisation_schedule, GET /tools

`expose(func)` reads the function (signatures.py: the request and response models;
docstrings.py: the documentation; errors.py: exceptions as problems) and adds
`POST {prefix}/{name}`; `long_running=True` answers 202 with a job instead (long_running.py);
`GET {prefix}` lists every tool with its input and output JSON schemas.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import get_session
from app.core.errors import problems
from app.expose.errors import ErrorSpec, ExposeError, document_errors, problem_example
from app.expose.injection import DEFAULT_INJECTABLES, Caller, Injectable, dependency_param
from app.expose.long_running import (
    DEFAULT_JOB_TIME_LIMIT,
    point_at_job,
    register_job_kind,
    submit_job,
)
from app.expose.tool import Tool, ToolOptions, build_tool, qualified_name

F = TypeVar("F", bound=Callable[..., Any])

# Threads one sync tool may occupy at once. Its own limiter: a slow tool queues behind itself,
# never behind (nor in front of) the 40 threads FastAPI shares for sync dependencies and files.
DEFAULT_THREADS_PER_TOOL = 4

_UNAUTHORISED = problem_example(
    "not signed in, or the token is invalid", 401, "invalid_token", "token is invalid or expired"
)


class ToolInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    summary: str
    description: str
    long_running: bool
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class ToolList(BaseModel):
    items: list[ToolInfo]


@dataclasses.dataclass(frozen=True)
class ModuleTools:
    """What `expose_module` served, and what it skipped with the reason why."""

    exposed: list[str]
    skipped: dict[str, str]


class Exposer:
    """A router of tools: `expose(func)` adds `POST {prefix}/{name}`; `router` is the
    APIRouter to include. Routes must be added before the app starts (the lifespan builds the
    OpenAPI document)."""

    def __init__(
        self,
        *,
        prefix: str = "/tools",
        tags: Sequence[str] = ("tools",),
        caller: Caller | None = None,
        injectables: Sequence[Injectable] = DEFAULT_INJECTABLES,
        job_schema: type[BaseModel] | None = None,
        kind_prefix: str = "tools",
        threads_per_tool: int = DEFAULT_THREADS_PER_TOOL,
        job_time_limit: float = DEFAULT_JOB_TIME_LIMIT,
    ) -> None:
        if threads_per_tool < 1:
            raise ValueError("threads_per_tool must be at least 1")
        self.caller = caller
        self.job_schema = job_schema
        self.kind_prefix = kind_prefix
        self.threads_per_tool = threads_per_tool
        self.job_time_limit = job_time_limit
        self.options = ToolOptions(
            caller, list(injectables), kind_prefix, threads_per_tool, job_schema is not None
        )
        self.tools: dict[str, Tool] = {}
        dependencies = [Depends(caller.dependency)] if caller is not None else []
        self.router = APIRouter(prefix=prefix, tags=list(tags), dependencies=dependencies)
        self._auth_responses: dict[int | str, Any] = {401: _UNAUTHORISED} if caller else {}
        self.router.add_api_route(
            "",
            self._list_endpoint(),
            methods=["GET"],
            response_model=ToolList,
            summary="List the tools",
            description="Every exposed function, with the JSON schemas of its arguments "
            "(the request body) and of its result.",
            name=f"{kind_prefix}_list",
            responses=self._auth_responses,
        )

    @typing.overload
    def expose(
        self,
        func: F,
        *,
        name: str | None = None,
        long_running: bool = False,
        errors: Mapping[type[BaseException], ErrorSpec] | None = None,
        check: Callable[..., None] | None = None,
    ) -> F: ...

    @typing.overload
    def expose(
        self,
        func: None = None,
        *,
        name: str | None = None,
        long_running: bool = False,
        errors: Mapping[type[BaseException], ErrorSpec] | None = None,
        check: Callable[..., None] | None = None,
    ) -> Callable[[F], F]: ...

    def expose(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        long_running: bool = False,
        errors: Mapping[type[BaseException], ErrorSpec] | None = None,
        check: Callable[..., None] | None = None,
    ) -> F | Callable[[F], F]:
        """Serve `func` as `POST {prefix}/{name}` (name: the function's own by default).
        Usable as `@tools.expose` or `@tools.expose(name=..., errors={Exc: 409})`. The
        function itself is returned unchanged.

        `check(**some_arguments)` runs with the request's validation: a ValueError it raises
        is a 422 before the function runs (for a long-running tool, before any job is
        queued). Its parameters are named like the function's."""

        def register(target: F) -> F:
            tool = build_tool(
                target,
                self.options,
                name=name,
                long_running=long_running,
                errors=errors,
                check=check,
            )
            if tool.name in self.tools:
                raise ExposeError(
                    f"{qualified_name(target)}: a tool named {tool.name!r} is already exposed"
                )
            if long_running:
                register_job_kind(tool, self.caller, self.job_time_limit)
            self._add_route(tool)
            self.tools[tool.name] = tool
            return target

        if func is None:
            return register
        return register(func)

    def expose_module(self, module_name: str, *, names: Sequence[str] = ()) -> ModuleTools:
        """Expose the public functions a module defines (see `public_functions`), or only
        `names`. A function named in `names` that is missing or cannot be exposed is an
        ExposeError; without `names`, one that cannot be exposed is skipped with the reason.
        ExposeError too when nothing could be exposed; ImportError for a missing module."""
        found = public_functions(importlib.import_module(module_name))
        if missing := [n for n in names if n not in found]:
            raise ExposeError(
                f"module {module_name} has no public function named {', '.join(missing)} "
                f"(it has: {', '.join(found) or 'none'})"
            )
        for name in names:
            self.expose(found[name])  # an ExposeError here names the function and why
        skipped: dict[str, str] = {}
        for name, function in ({} if names else found).items():
            try:
                self.expose(function)
            except ExposeError as exc:
                skipped[name] = str(exc)
        exposed = list(names) or [n for n in found if n not in skipped]
        if not exposed:
            reasons = "".join(f"\n  {reason}" for reason in skipped.values())
            raise ExposeError(f"module {module_name} has no function that can be exposed{reasons}")
        return ModuleTools(exposed, skipped)

    # -- routes ----------------------------------------------------------------------------

    def _add_route(self, tool: Tool) -> None:
        parts = [tool.docs.description]
        if tool.docs.raises:
            parts.append(
                "Errors:\n\n"
                + "\n".join(f"- `{name}`: {text}" for name, text in tool.docs.raises.items())
            )
        if tool.long_running:
            parts.append(
                "Long-running: answers 202 with a job; poll `GET /jobs/{id}`, whose `result` "
                "is the function's return value once it has `succeeded`."
            )
        self.router.add_api_route(
            f"/{tool.name}",
            self._endpoint(tool),
            methods=["POST"],
            response_model=self.job_schema if tool.long_running else tool.signature.result_model,
            status_code=status.HTTP_202_ACCEPTED if tool.long_running else status.HTTP_200_OK,
            summary=tool.docs.summary or tool.name.replace("_", " "),
            description="\n\n".join(p for p in parts if p),
            name=f"{self.kind_prefix}_{tool.name}",
            responses=self._responses(tool),
        )

    def _responses(self, tool: Tool) -> dict[int | str, Any]:
        responses: dict[int | str, Any] = copy.deepcopy(self._auth_responses)
        refused = "" if tool.long_running else "; or the function raised ValueError or TypeError"
        responses[422] = problem_example(
            f"invalid or unknown arguments (`validation_error`){refused}",
            422,
            "validation_error",
            "request validation failed",
        )
        if tool.long_running:
            # The function's own errors end the job (`failed`), they are not HTTP answers.
            responses.update(problems(503))
        else:
            document_errors(responses, tool.errors, tool.docs.raises)
        return responses

    def _endpoint(self, tool: Tool) -> Callable[..., Awaitable[Any]]:
        signature = tool.signature
        body_name = "tool_arguments"
        while body_name in signature.injected or body_name in signature.caller_params:
            body_name += "_"
        model = signature.arguments_model
        body = (
            Annotated[model, Body()] if signature.body_required else Annotated[model | None, Body()]
        )
        params = [
            inspect.Parameter(
                body_name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=body,
                default=inspect.Parameter.empty if signature.body_required else None,
            )
        ]
        # A long-running tool gets its injected values inside the job; the request only
        # needs a session to queue it.
        injected = {} if tool.long_running else signature.injected
        params += [dependency_param(n, i.type, i.dependency) for n, i in injected.items()]
        if tool.long_running:
            params.append(dependency_param("tool_session_", AsyncSession, get_session))
            for name, kind in (("tool_request_", Request), ("tool_response_", Response)):
                params.append(
                    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind)
                )
        if self.caller is not None:
            params.append(
                dependency_param("tool_caller_", self.caller.type, self.caller.dependency)
            )
        caller, job_schema = self.caller, self.job_schema

        async def endpoint(**kwargs: Any) -> Any:
            arguments = _arguments(model, kwargs[body_name])
            caller_value = kwargs.get("tool_caller_")
            if tool.long_running:
                assert job_schema is not None
                user_id = caller.user_id(caller_value) if caller is not None else None
                job = await submit_job(kwargs["tool_session_"], tool, arguments, user_id=user_id)
                point_at_job(kwargs["tool_request_"], kwargs["tool_response_"], job.id)
                return job_schema.model_validate(job)
            provided = {n: kwargs[n] for n in injected}
            provided.update(dict.fromkeys(signature.caller_params, caller_value))
            try:
                value = await tool.call(arguments, provided)
            except Exception as exc:
                problem = tool.problem_for(exc)
                if problem is None:
                    raise  # logged with its traceback; the client gets `internal_error`
                raise problem from exc
            return {"result": value}

        endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        endpoint.__name__ = f"tool_{tool.name}"
        return endpoint

    def _list_endpoint(self) -> Callable[..., Awaitable[ToolList]]:
        async def list_tools(request: Request) -> ToolList:
            # The list is served at the prefix: its own path, wherever the router was included
            # (/api/v1/tools), is where the tools are.
            base = request.url.path.rstrip("/")
            return ToolList(
                items=[
                    ToolInfo(
                        name=tool.name,
                        path=f"{base}/{tool.name}",
                        summary=tool.docs.summary,
                        description=tool.docs.description,
                        long_running=tool.long_running,
                        input_schema=tool.signature.input_schema,
                        output_schema=tool.signature.output_schema,
                    )
                    for tool in self.tools.values()
                ]
            )

        return list_tools


def _arguments(model: type[BaseModel], sent: BaseModel | None) -> BaseModel:
    """The validated body; with no body, the defaults, validated as a body would be (a
    `check` may refuse them: a 422, as for any invalid body)."""
    if sent is not None:
        return sent
    try:
        return model()
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc


def public_functions(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """The functions a module defines (not those it imports), minus `_private` ones, in the
    order they appear in the source."""
    found = [
        value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
    ]
    found.sort(key=lambda f: f.__code__.co_firstlineno)
    return {f.__name__: cast(Callable[..., Any], f) for f in found}
