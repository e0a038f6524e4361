"""One exposed function: its name, its signature read as models, its exception map, and how
it is called.

A sync function runs in a worker thread under its own bounded `anyio.CapacityLimiter`, so a
slow one neither blocks the event loop nor takes the threads FastAPI needs for everything
else; an async function is awaited.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
from pydantic import BaseModel

from app.core.errors import AppError
from app.expose.docstrings import Docstring, parse_docstring
from app.expose.errors import ErrorMap, ErrorSpec, ExposeError, error_map, problem_for
from app.expose.injection import Caller, Injectable
from app.expose.signatures import Reading, Signature, read_signature

_TOOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")


@dataclasses.dataclass
class Tool:
    name: str
    kind: str  # the job kind of a long-running tool
    func: Callable[..., Any]
    long_running: bool
    docs: Docstring
    signature: Signature
    errors: ErrorMap
    threads: int
    _limiter: anyio.CapacityLimiter | None = None

    def limiter(self) -> anyio.CapacityLimiter:
        # Made on first use, inside the running event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def call(self, arguments: BaseModel, provided: Mapping[str, Any]) -> Any:
        """Run the function with validated arguments plus the injected values."""
        positional, keyword = self.signature.bind(arguments, provided)
        try:
            if self.signature.is_async:
                return await self.func(*positional, **keyword)
            call = functools.partial(self.func, *positional, **keyword)
            return await anyio.to_thread.run_sync(call, limiter=self.limiter())
        except SystemExit as exc:
            # sys.exit() in a tool must not stop the server.
            raise RuntimeError(f"tool {self.name} called sys.exit()") from exc

    def problem_for(self, exc: BaseException) -> AppError | None:
        """The problem an exception of the function maps to; None: unexpected (a 500)."""
        return problem_for(self.errors, exc)


@dataclasses.dataclass(frozen=True)
class ToolOptions:
    """How an Exposer builds its tools."""

    caller: Caller | None
    injectables: Sequence[Injectable]
    kind_prefix: str
    threads_per_tool: int
    can_run_jobs: bool


def qualified_name(func: Callable[..., Any]) -> str:
    """`module.function`, as error messages name a function."""
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"


def build_tool(
    func: Callable[..., Any],
    options: ToolOptions,
    *,
    name: str | None,
    long_running: bool,
    errors: Mapping[type[BaseException], ErrorSpec] | None,
    check: Callable[..., None] | None,
) -> Tool:
    """Everything derived from `func`, or an ExposeError that names it and says why not."""
    qualname = qualified_name(func)
    if not callable(func) or isinstance(func, type):
        raise ExposeError(f"{qualname}: only functions can be exposed")
    tool_name: str = name or str(getattr(func, "__name__", ""))
    if not _TOOL_NAME.fullmatch(tool_name):
        raise ExposeError(
            f"{qualname}: tool name {tool_name!r} must be a letter then letters, digits or "
            "underscores (at most 63)"
        )
    unwrapped = inspect.unwrap(func)
    if inspect.isgeneratorfunction(unwrapped) or inspect.isasyncgenfunction(unwrapped):
        raise ExposeError(f"{qualname}: generators cannot be exposed; return a list")
    if long_running and not options.can_run_jobs:
        raise ExposeError(f"{qualname}: long_running needs an Exposer made with job_schema=")
    docs = parse_docstring(func)
    reading = Reading(
        qualname, tool_name, docs, options.caller, options.injectables, long_running, check
    )
    return Tool(
        name=tool_name,
        kind=f"{options.kind_prefix}.{tool_name}",
        func=func,
        long_running=long_running,
        docs=docs,
        signature=read_signature(func, reading),
        errors=error_map(qualname, errors),
        threads=options.threads_per_tool,
    )
