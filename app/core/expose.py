"""Plain Python functions -> validated, documented, authorised endpoints, in one line.

    tools = Exposer(prefix="/tools", caller=..., job_schema=JobRead)

    @tools.expose
    def amortisation_schedule(principal: Decimal, annual_rate: Decimal, months: int) -> Schedule:
        "Monthly payments of a fixed-rate loan."

    app.include_router(tools.router)    # POST /tools/amortisation_schedule, GET /tools

What `expose` does is what pattern 5 of the skill does by hand (docs/patterns/05-expose.md):

- the request body is a Pydantic model built from the signature (type hints, defaults,
  `Annotated[..., Field(...)]` constraints, models and dataclasses as parameters); unknown
  fields are a 422;
- the response is `{"result": <return value>}`, validated against the return annotation;
- the docstring is the operation's summary and description; an `Args:` section documents the
  parameters;
- a sync function runs in a worker thread under its own bounded `anyio.CapacityLimiter`, so a
  slow one neither blocks the event loop nor takes the threads FastAPI needs for everything
  else; an async function is awaited;
- exceptions become problems: ValueError/TypeError 422, LookupError 404, PermissionError 403,
  `errors={Exc: status}` for more; anything else is a 500 that says only `internal_error`;
- parameters typed like the app's dependencies (the caller, an AsyncSession, the shared
  httpx.AsyncClient, Settings) are injected, never read from the body;
- `long_running=True` answers 202 with a job (app.core.jobs) whose result is the return value;
- `GET {prefix}` lists every tool with its input and output JSON schemas.

What cannot be exposed fails at definition time with the function and the parameter named.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import inspect
import re
import types
import typing
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from typing import Annotated, Any, Literal, TypeVar, Union, cast

import anyio
import httpx
import structlog
from fastapi import APIRouter, Body, Depends, Request, Response, status
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticDeprecationWarning,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic.errors import PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import PydanticJsonSchemaWarning
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import NoMatchFound

from app.core.db import get_session
from app.core.dependencies import get_app_settings
from app.core.errors import AppError, public_validation_errors
from app.core.jobs import JobContext, JobFailed, enqueue, job_kind
from app.core.settings import Settings

log = structlog.get_logger("app.expose")

F = TypeVar("F", bound=Callable[..., Any])

# Threads one sync tool may occupy at once. Its own limiter: a slow tool queues behind itself,
# never behind (nor in front of) the 40 threads FastAPI shares for sync dependencies and files.
DEFAULT_THREADS_PER_TOOL = 4
DEFAULT_JOB_TIME_LIMIT = 600.0
MAX_DETAIL_LENGTH = 500
_TOOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")

# The default map from a function's exceptions to HTTP statuses. The most specific class in an
# exception's MRO wins, and `errors=` entries override these.
DEFAULT_ERRORS: Mapping[type[BaseException], int] = {
    ValueError: 422,
    TypeError: 422,
    LookupError: 404,
    PermissionError: 403,
}
# Codes for built-in exceptions, whose class names say nothing to an API client.
_GENERIC_CODES = {403: "forbidden", 404: "not_found", 422: "invalid_arguments"}

ErrorSpec = int | tuple[int, str]


class ExposeError(TypeError):
    """A function that cannot be exposed as it stands. The message names the function and,
    where there is one, the parameter."""


class ToolError(AppError):
    """A function's own exception, rendered as the problem its exception map asks for."""

    def __init__(self, status_code: int, code: str, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, code=code, **kwargs)
        self.status_code = status_code


# --- what gets injected ---------------------------------------------------------------------


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


async def get_http_client(request: Request) -> httpx.AsyncClient:
    """The shared outbound client the lifespan made (pooled connections, timeouts)."""
    client: httpx.AsyncClient = request.app.state.http
    return client


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


# --- reading a function ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Docstring:
    summary: str
    description: str
    params: dict[str, str]
    returns: str
    raises: dict[str, str]


_SECTIONS = {
    "args": "params",
    "arguments": "params",
    "parameters": "params",
    "params": "params",
    "keyword args": "params",
    "returns": "returns",
    "return": "returns",
    "raises": "raises",
}
_SECTION = re.compile(r"^([A-Za-z ]+):\s*$")
_ENTRY = re.compile(r"^(\s{0,4})\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_FIELD = re.compile(r"^:(param|raises?|returns?)(?:\s+(?:[^:]*\s)?(\w+))?\s*:\s*(.*)$")


def parse_docstring(func: Callable[..., Any]) -> Docstring:
    """Summary (first paragraph), description (the other prose), and the descriptions of the
    parameters, the return value and the exceptions, from Google-style `Args:`, `Returns:`
    and `Raises:` sections or reST `:param x:`, `:returns:`, `:raises X:` fields."""
    doc = inspect.getdoc(func) or ""
    found: dict[str, dict[str, str]] = {"params": {}, "raises": {}}
    returns: list[str] = []
    prose: list[str] = []
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        header = _SECTION.match(line)
        if header and header.group(1).strip().lower() in _SECTIONS:
            section, current = _SECTIONS[header.group(1).strip().lower()], None
            continue
        if field := _REST_FIELD.match(stripped):
            kind, name, text = field.groups()
            section = {"param": "params", "raise": "raises", "raises": "raises"}.get(
                kind, "returns"
            )
            if section == "returns":
                returns.append(text.strip())
                current = None
            elif name:
                found[section][name] = text.strip()
                current = name
            continue
        if section is None:
            prose.append(line)
            continue
        if not stripped:
            section, current = None, None
            continue
        if section == "returns":
            returns.append(stripped)
        elif (entry := _ENTRY.match(line)) and not line.startswith(":"):
            current = entry.group(2)
            found[section][current] = entry.group(3).strip()
        elif current is not None:
            found[section][current] = f"{found[section][current]} {stripped}".strip()
    text = "\n".join(prose).strip()
    summary, _, rest = text.partition("\n\n")
    return Docstring(
        summary=" ".join(summary.split()),
        description=rest.strip(),
        params=found["params"],
        returns=" ".join(returns),
        raises=found["raises"],
    )


def _base_type(annotation: Any) -> Any:
    """`Annotated[T, ...]` -> T."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _optional_inner(annotation: Any) -> Any:
    """`T | None` -> T (an optional dependency is still that dependency)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def _schema_problem(annotation: Any) -> str | None:
    """Why pydantic cannot validate and describe this type, or None when it can."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PydanticJsonSchemaWarning)
            warnings.simplefilter("ignore", PydanticDeprecationWarning)
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            adapter.json_schema(mode="validation")
            adapter.json_schema(mode="serialization")
    except (PydanticUserError, PydanticJsonSchemaWarning, TypeError, ValueError) as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


# --- a tool ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BodyParam:
    name: str  # the function's parameter name, and the JSON field name
    field: str  # the model's attribute (differs only when the name would shadow BaseModel's)


@dataclasses.dataclass
class Tool:
    """One exposed function and everything derived from it."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    long_running: bool
    errors: dict[type[BaseException], tuple[int, str | None]]
    docs: Docstring
    body_params: list[BodyParam]
    injected: dict[str, Injectable]
    caller_params: list[str]
    arguments_model: type[BaseModel]
    result_adapter: TypeAdapter[Any]
    result_model: type[BaseModel]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    kind: str
    threads: int
    # Every parameter in order: (name, positional-only).
    order: list[tuple[str, bool]] = dataclasses.field(default_factory=list)
    _limiter: anyio.CapacityLimiter | None = None

    @property
    def body_required(self) -> bool:
        return any(f.is_required() for f in self.arguments_model.model_fields.values())

    def limiter(self) -> anyio.CapacityLimiter:
        # Made on first use, inside the running event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def call(self, arguments: BaseModel, provided: Mapping[str, Any]) -> Any:
        """Run the function with validated arguments plus the injected values."""
        positional: list[Any] = []
        keyword: dict[str, Any] = {}
        values = {p.name: getattr(arguments, p.field) for p in self.body_params}
        values.update(provided)
        for name, positional_only in self.order:
            if positional_only:
                positional.append(values[name])
            else:
                keyword[name] = values[name]
        try:
            if self.is_async:
                return await self.func(*positional, **keyword)
            call = functools.partial(self.func, *positional, **keyword)
            return await anyio.to_thread.run_sync(call, limiter=self.limiter())
        except SystemExit as exc:
            # sys.exit() in a tool must not stop the server.
            raise RuntimeError(f"tool {self.name} called sys.exit()") from exc

    def problem_for(self, exc: BaseException) -> AppError | None:
        """The problem an exception of the function maps to; None: unexpected (a 500)."""
        if isinstance(exc, AppError):
            return exc
        for cls in type(exc).__mro__:
            if cls in self.errors:
                status_code, code = self.errors[cls]
                break
        else:
            return None
        if code is None:
            code = _code_for_class(type(exc), status_code)
        if isinstance(exc, ValidationError):
            # Its message repeats the input; the sanitised list says what was wrong.
            return ToolError(
                status_code,
                code,
                f"{exc.title} is invalid",
                errors=public_validation_errors(exc.errors()),
            )
        return ToolError(status_code, code, _detail(exc, status_code))


def _code_for_class(cls: type[BaseException], status_code: int) -> str:
    """A built-in exception's class name means nothing to a client: it gets the status's
    generic code. The function's own exceptions are named for what they mean."""
    if cls.__module__ == "builtins":
        return _GENERIC_CODES.get(status_code, "error")
    return _snake(cls.__name__)


def _detail(exc: BaseException, status_code: int) -> str:
    # KeyError("x") prints as "'x'": the argument itself is the message.
    text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    text = text.strip() or _GENERIC_CODES.get(status_code, "error").replace("_", " ")
    return text if len(text) <= MAX_DETAIL_LENGTH else text[: MAX_DETAIL_LENGTH - 1] + "…"


# --- the router-like object -----------------------------------------------------------------


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


def _problem_response(description: str, status_code: int, code: str, detail: str) -> Any:
    return {
        "description": description,
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "about:blank",
                    "status": status_code,
                    "code": code,
                    "detail": detail,
                    "request_id": "0f3c9a6e5b2d4c1e8a7f6b5c4d3e2f1a",
                }
            }
        },
    }


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
        self.prefix = prefix
        self.caller = caller
        self.injectables = list(injectables)
        self.job_schema = job_schema
        self.kind_prefix = kind_prefix
        self.threads_per_tool = threads_per_tool
        self.job_time_limit = job_time_limit
        self.tools: dict[str, Tool] = {}
        dependencies = [Depends(caller.dependency)] if caller is not None else []
        self.router = APIRouter(prefix=prefix, tags=list(tags), dependencies=dependencies)
        self._auth_responses: dict[int | str, Any] = (
            {
                401: _problem_response(
                    "not signed in, or the token is invalid",
                    401,
                    "invalid_token",
                    "token is invalid or expired",
                )
            }
            if caller is not None
            else {}
        )
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

    # -- public API ------------------------------------------------------------------------

    @typing.overload
    def expose(
        self,
        func: F,
        *,
        name: str | None = None,
        long_running: bool = False,
        errors: Mapping[type[BaseException], ErrorSpec] | None = None,
    ) -> F: ...

    @typing.overload
    def expose(
        self,
        func: None = None,
        *,
        name: str | None = None,
        long_running: bool = False,
        errors: Mapping[type[BaseException], ErrorSpec] | None = None,
    ) -> Callable[[F], F]: ...

    def expose(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        long_running: bool = False,
        errors: Mapping[type[BaseException], ErrorSpec] | None = None,
    ) -> F | Callable[[F], F]:
        """Serve `func` as `POST {prefix}/{name}` (name: the function's own by default).
        Usable as `@tools.expose` or `@tools.expose(name=..., errors={Exc: 409})`. The
        function itself is returned unchanged."""

        def register(target: F) -> F:
            tool = self._build(target, name=name, long_running=long_running, errors=errors)
            self._add_route(tool)
            self.tools[tool.name] = tool
            return target

        if func is None:
            return register
        return register(func)

    def expose_module(self, module_name: str, *, names: Sequence[str] | None = None) -> list[Tool]:
        """Expose every public function defined in a module (those not starting with `_`,
        not imported from elsewhere), or only `names`. Raises ExposeError, naming the function,
        when one cannot be exposed, and ImportError when the module cannot be imported."""
        module = importlib.import_module(module_name)
        found = public_functions(module)
        if names:
            missing = [n for n in names if n not in found]
            if missing:
                raise ExposeError(
                    f"module {module_name} has no public function named {', '.join(missing)} "
                    f"(it has: {', '.join(found) or 'none'})"
                )
            found = {n: found[n] for n in names}
        if not found:
            raise ExposeError(f"module {module_name} defines no public function to expose")
        exposed = []
        for function in found.values():
            self.expose(function)
            exposed.append(self.tools[function.__name__])
        return exposed

    # -- building a tool -------------------------------------------------------------------

    def _build(
        self,
        func: Callable[..., Any],
        *,
        name: str | None,
        long_running: bool,
        errors: Mapping[type[BaseException], ErrorSpec] | None,
    ) -> Tool:
        qualname = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"
        if not callable(func) or isinstance(func, type):
            raise ExposeError(f"{qualname}: only functions can be exposed")
        tool_name: str = name or str(getattr(func, "__name__", ""))
        if not _TOOL_NAME.fullmatch(tool_name):
            raise ExposeError(
                f"{qualname}: tool name {tool_name!r} must be a letter then letters, digits or "
                "underscores (at most 63)"
            )
        if tool_name in self.tools:
            raise ExposeError(f"{qualname}: a tool named {tool_name!r} is already exposed")
        unwrapped = inspect.unwrap(func)
        if inspect.isgeneratorfunction(unwrapped) or inspect.isasyncgenfunction(unwrapped):
            raise ExposeError(f"{qualname}: generators cannot be exposed; return a list")
        is_async = inspect.iscoroutinefunction(unwrapped)
        if long_running and self.job_schema is None:
            raise ExposeError(f"{qualname}: long_running needs an Exposer made with job_schema=")

        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception as exc:
            raise ExposeError(f"{qualname}: its type hints cannot be resolved: {exc}") from exc
        signature = inspect.signature(func)
        docs = parse_docstring(func)

        fields: dict[str, Any] = {}
        body_params: list[BodyParam] = []
        injected: dict[str, Injectable] = {}
        caller_params: list[str] = []
        for param in signature.parameters.values():
            where = f"{qualname}, parameter {param.name!r}"
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                raise ExposeError(f"{where}: *args cannot be exposed (a JSON body has names)")
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                raise ExposeError(f"{where}: **kwargs cannot be exposed (list the parameters)")
            if param.name not in hints:
                raise ExposeError(f"{where}: has no type hint, so it cannot be validated")
            annotation = hints[param.name]
            target = _optional_inner(_base_type(annotation))

            if self.caller is not None and _is_type(target, self.caller.type):
                caller_params.append(param.name)
                continue
            injectable = self._injectable_for(target)
            if injectable is not None:
                if injectable.async_only and not is_async:
                    raise ExposeError(
                        f"{where}: a {injectable.label or injectable.type.__name__} can only be "
                        "given to an async def function"
                    )
                if long_running and injectable.in_job is None:
                    raise ExposeError(
                        f"{where}: a long-running tool cannot take "
                        f"{injectable.label or injectable.type.__name__}"
                    )
                injected[param.name] = injectable
                continue

            if problem := _schema_problem(annotation):
                raise ExposeError(
                    f"{where}: type {annotation!r} cannot be read from JSON: {problem}"
                )
            field_name = param.name
            if param.name.startswith("_") or hasattr(BaseModel, param.name):
                field_name = f"arg_{param.name.strip('_')}_{len(body_params)}"
            # A description given in Annotated[..., Field(description=...)] wins.
            described = any(
                isinstance(meta, FieldInfo) and meta.description
                for meta in typing.get_args(annotation)[1:]
            )
            description = None if described else docs.params.get(param.name)
            info: FieldInfo
            kwargs: dict[str, Any] = {}
            if description:
                kwargs["description"] = description
            if field_name != param.name:
                kwargs["alias"] = param.name
            if param.default is not inspect.Parameter.empty:
                kwargs["default"] = param.default
            info = Field(**kwargs)
            fields[field_name] = (annotation, info)
            body_params.append(BodyParam(param.name, field_name))

        if "return" not in hints:
            raise ExposeError(f"{qualname}: has no return annotation, so its result has no schema")
        returns = hints["return"]
        if problem := _schema_problem(returns):
            raise ExposeError(
                f"{qualname}: return type {returns!r} cannot be sent as JSON: {problem}"
            )

        model_name = _pascal(tool_name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", PydanticJsonSchemaWarning)
                arguments_model = create_model(
                    f"{model_name}Arguments",
                    __config__=ConfigDict(extra="forbid", title=f"{model_name}Arguments"),
                    __doc__=f"The arguments of {tool_name}.",
                    **fields,
                )
                input_schema = arguments_model.model_json_schema(by_alias=True)
                result_description = docs.returns or f"What {tool_name} returns."
                result_model = create_model(
                    f"{model_name}Result",
                    __config__=ConfigDict(extra="forbid"),
                    result=(returns, Field(description=result_description)),
                )
                result_adapter: TypeAdapter[Any] = TypeAdapter(returns)
                output_schema = result_adapter.json_schema(mode="serialization")
        except (PydanticUserError, PydanticJsonSchemaWarning, TypeError, ValueError) as exc:
            raise ExposeError(f"{qualname}: cannot build its request model: {exc}") from exc

        error_map: dict[type[BaseException], tuple[int, str | None]] = {
            cls: (code, None) for cls, code in DEFAULT_ERRORS.items()
        }
        for cls, spec in (errors or {}).items():
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise ExposeError(f"{qualname}: errors keys must be exception classes, got {cls!r}")
            status_code, code = (spec, None) if isinstance(spec, int) else spec
            if not 400 <= status_code <= 599:
                raise ExposeError(f"{qualname}: errors[{cls.__name__}] must be a 4xx or 5xx status")
            error_map[cls] = (status_code, code)

        tool = Tool(
            name=tool_name,
            func=func,
            is_async=is_async,
            long_running=long_running,
            errors=error_map,
            docs=docs,
            body_params=body_params,
            injected=injected,
            caller_params=caller_params,
            arguments_model=arguments_model,
            result_adapter=result_adapter,
            result_model=result_model,
            input_schema=input_schema,
            output_schema=output_schema,
            kind=f"{self.kind_prefix}.{tool_name}",
            threads=self.threads_per_tool,
            order=[
                (p.name, p.kind is inspect.Parameter.POSITIONAL_ONLY)
                for p in signature.parameters.values()
            ],
        )
        if long_running:
            self._register_job_kind(tool)
        return tool

    def _injectable_for(self, target: Any) -> Injectable | None:
        for injectable in self.injectables:
            if _is_type(target, injectable.type):
                return injectable
        return None

    # -- routes ----------------------------------------------------------------------------

    def _responses(self, tool: Tool) -> dict[int | str, Any]:
        responses: dict[int | str, Any] = copy.deepcopy(self._auth_responses)
        refused = "" if tool.long_running else "; or the function raised ValueError or TypeError"
        responses[422] = _problem_response(
            f"invalid or unknown arguments (`validation_error`){refused}",
            422,
            "validation_error",
            "request validation failed",
        )
        if tool.long_running:
            # The function's own errors end the job (`failed`), they are not HTTP answers.
            responses[503] = _problem_response(
                "the job queue is unreachable; nothing was done",
                503,
                "job_queue_unavailable",
                "the job queue is unreachable; nothing was done, retry shortly",
            )
            return responses
        causes: dict[int, list[str]] = {}
        for cls, (status_code, code) in tool.errors.items():
            shown = code or _code_for_class(cls, status_code)
            documented = tool.docs.raises.get(cls.__name__)
            cause = f"`{cls.__name__}` (`{shown}`)" + (f": {documented}" if documented else "")
            causes.setdefault(status_code, []).append(cause)
            if status_code not in responses:
                detail = documented or f"the function raised {cls.__name__}"
                responses[status_code] = _problem_response("", status_code, shown, detail)
        for status_code, listed in causes.items():
            base = responses[status_code]["description"]
            raised = "the function raised " + "; ".join(sorted(listed))
            responses[status_code]["description"] = f"{base}; {raised}" if base else raised
        return responses

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
        summary = tool.docs.summary or tool.name.replace("_", " ")
        self.router.add_api_route(
            f"/{tool.name}",
            self._endpoint(tool),
            methods=["POST"],
            response_model=self.job_schema if tool.long_running else tool.result_model,
            status_code=status.HTTP_202_ACCEPTED if tool.long_running else status.HTTP_200_OK,
            summary=summary,
            description="\n\n".join(p for p in parts if p),
            name=f"{self.kind_prefix}_{tool.name}",
            responses=self._responses(tool),
        )

    def _endpoint(self, tool: Tool) -> Callable[..., Awaitable[Any]]:
        body_name = "tool_arguments"
        while body_name in tool.injected or body_name in tool.caller_params:
            body_name += "_"
        model = tool.arguments_model
        params = [
            inspect.Parameter(
                body_name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[model, Body()]
                if tool.body_required
                else Annotated[model | None, Body()],
                default=inspect.Parameter.empty if tool.body_required else None,
            )
        ]
        injected_names: list[str] = []
        if tool.long_running:
            params.append(_dependency_param("tool_session_", AsyncSession, get_session))
            for name, kind in (("tool_request_", Request), ("tool_response_", Response)):
                params.append(
                    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind)
                )
        else:
            for param_name, injectable in tool.injected.items():
                params.append(_dependency_param(param_name, injectable.type, injectable.dependency))
                injected_names.append(param_name)
        caller_param = "tool_caller_"
        if self.caller is not None:
            params.append(_dependency_param(caller_param, self.caller.type, self.caller.dependency))

        caller = self.caller
        job_schema = self.job_schema

        async def endpoint(**kwargs: Any) -> Any:
            arguments = kwargs[body_name] if kwargs[body_name] is not None else model()
            caller_value = kwargs.get(caller_param)
            if tool.long_running:
                assert job_schema is not None
                job = await submit_job(
                    kwargs["tool_session_"],
                    tool,
                    arguments,
                    user_id=caller.user_id(caller_value) if caller is not None else None,
                )
                _point_at_job(kwargs["tool_request_"], kwargs["tool_response_"], job.id)
                return job_schema.model_validate(job)
            provided = {n: kwargs[n] for n in injected_names}
            provided.update(dict.fromkeys(tool.caller_params, caller_value))
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
                        input_schema=tool.input_schema,
                        output_schema=tool.output_schema,
                    )
                    for tool in self.tools.values()
                ]
            )

        return list_tools

    # -- long-running tools ----------------------------------------------------------------

    def _register_job_kind(self, tool: Tool) -> None:
        caller = self.caller

        # The arguments travel as one object, so no parameter name can collide with `ctx`.
        async def run_tool(ctx: JobContext, *, arguments: dict[str, Any]) -> Any:
            try:
                validated = tool.arguments_model.model_validate(arguments)
            except ValidationError as exc:
                raise JobFailed("the job's arguments no longer fit the tool") from exc
            async with AsyncExitStack() as stack:
                provided: dict[str, Any] = {}
                for param_name, injectable in tool.injected.items():
                    assert injectable.in_job is not None  # checked at definition
                    provided[param_name] = await injectable.in_job(ctx, stack)
                if tool.caller_params:
                    assert caller is not None
                    who = await _load_caller(ctx, caller)
                    provided.update(dict.fromkeys(tool.caller_params, who))
                try:
                    value = await tool.call(validated, provided)
                except Exception as exc:
                    problem = tool.problem_for(exc)
                    if problem is None:
                        # As over HTTP: the traceback goes to the log, the job's owner reads
                        # only `internal_error` (a message may hold a secret or a SQL text).
                        log.exception("tool raised", tool=tool.name, job_id=str(ctx.job_id))
                        raise JobFailed(
                            "internal error",
                            result={
                                "status": 500,
                                "code": "internal_error",
                                "detail": "internal server error",
                            },
                        ) from exc
                    raise JobFailed(
                        problem.detail,
                        result={
                            "status": problem.status_code,
                            "code": problem.code,
                            "detail": problem.detail,
                        },
                    ) from exc
            return tool.result_adapter.dump_python(value, mode="json")

        run_tool.__name__ = f"run_{tool.name}"
        run_tool.__qualname__ = f"run_{tool.name}"
        # A plain function may not be safe to run twice: one attempt.
        job_kind(tool.kind, retryable=False, time_limit=self.job_time_limit)(
            _shared_job_function(tool.kind, tool.func, run_tool)
        )


# One job function per (kind, function), kept across Exposers: a kind is registered once per
# process, and a test that builds several apps exposes the same functions again.
_JOB_FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Awaitable[Any]]]] = {}


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


def _dependency_param(name: str, annotation: Any, dependency: Callable[..., Any]) -> Any:
    scope: Literal["function"] | None = "function" if dependency is get_session else None
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, Depends(dependency, scope=scope)],
    )


def _is_type(annotation: Any, expected: type[Any]) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, expected)


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


def _point_at_job(request: Request, response: Response, job_id: object) -> None:
    """A 202 carries `Location`: the app's job route (named `read_job`), when it has one."""
    with suppress(NoMatchFound):
        location = request.app.url_path_for("read_job", job_id=str(job_id))
        response.headers["Location"] = str(location)
