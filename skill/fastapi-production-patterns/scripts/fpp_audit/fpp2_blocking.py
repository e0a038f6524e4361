"""FPP2xx: blocking the event loop."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator

from .framework import rule
from .module import Module
from .names import FILE_READS, NETWORK_CALLS, SYNC_REDIS, SYNC_SESSIONS


def blocking_calls(m: Module, match: Callable[[ast.Call, str], bool]) -> Iterator[ast.Call]:
    for call in m.calls:
        if m.in_async_def(call) and match(call, m.qualname(call.func) or ""):
            yield call


@rule(
    "FPP201",
    "sync-http-in-async",
    (
        "blocking HTTP call (`requests`, `urllib`, sync `httpx`) inside `async def` stops every "
        "other request"
    ),
    "`await client.get(...)` on one shared `httpx.AsyncClient`",
    "ASYNC210, ASYNC212",
)
def sync_http_in_async(m: Module) -> Iterable[ast.AST]:
    verbs = ("get", "post", "put", "patch", "delete", "head", "options", "request")
    blocking = {f"requests.{v}" for v in (*verbs, "Session", "session")}
    blocking |= {f"httpx.{v}" for v in (*verbs, "stream", "Client")}
    blocking |= {"urllib.request.urlopen", "urllib3.request", "urllib3.PoolManager"}
    return blocking_calls(m, lambda c, q: q in blocking)


@rule(
    "FPP202",
    "time-sleep-in-async",
    "`time.sleep` inside `async def` freezes the event loop",
    "`await asyncio.sleep(...)`",
    "ASYNC251",
)
def time_sleep_in_async(m: Module) -> Iterable[ast.AST]:
    return blocking_calls(m, lambda c, q: q == "time.sleep")


@rule(
    "FPP203",
    "open-in-async",
    "blocking file I/O (`open`, `Path.read_text`, ...) inside `async def`",
    "`await anyio.Path(p).read_text()`, or do the file work in a `def` via `asyncio.to_thread`",
    "ASYNC230 (open)",
)
def open_in_async(m: Module) -> Iterable[ast.AST]:
    path_io = {"read_text", "read_bytes", "write_text", "write_bytes"}

    def match(call: ast.Call, q: str) -> bool:
        if isinstance(call.func, ast.Name) and call.func.id == "open":
            return m.is_builtin("open")
        if q in {"io.open", "codecs.open"}:
            return True
        func = call.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr in path_io | {"open"}
            and isinstance(func.value, ast.Call)
            and m.qualname(func.value.func) == "pathlib.Path"
        )

    return blocking_calls(m, match)


@rule(
    "FPP204",
    "sync-redis-in-async",
    "synchronous `redis` client used inside `async def` (every command blocks the loop)",
    "`redis.asyncio.Redis` (one client made in the lifespan), `await` each command",
)
def sync_redis_in_async(m: Module) -> Iterable[ast.AST]:
    clients = {
        name
        for name, value in m.globals.items()
        if isinstance(value, ast.Call) and m.qualname(value.func) in SYNC_REDIS
    }
    return blocking_calls(
        m,
        lambda c, q: (
            q in SYNC_REDIS
            or (
                isinstance(c.func, ast.Attribute)
                and isinstance(c.func.value, ast.Name)
                and c.func.value.id in clients
            )
        ),
    )


@rule(
    "FPP205",
    "sync-session-in-async",
    "synchronous SQLAlchemy `Session` inside `async def`: every query blocks the loop",
    "`AsyncSession` and `await session.execute(...)`, or make the endpoint a plain `def`",
)
def sync_session_in_async(m: Module) -> Iterable[ast.AST]:
    makers = {
        name
        for name, value in m.globals.items()
        if isinstance(value, ast.Call)
        and m.qualname(value.func)
        in {"sqlalchemy.orm.sessionmaker", "sqlmodel.orm.session.sessionmaker"}
    }
    yield from blocking_calls(
        m, lambda c, q: q in SYNC_SESSIONS or (isinstance(c.func, ast.Name) and c.func.id in makers)
    )
    for func in m.functions:
        if isinstance(func, ast.AsyncFunctionDef):
            yield from (
                a for a, _ in m.params(func) if m.annotation_names(a.annotation) & SYNC_SESSIONS
            )


@rule(
    "FPP206",
    "sync-upload-file-in-async",
    (
        "`UploadFile.file` (a blocking SpooledTemporaryFile) read inside `async def`; "
        "`pd.read_csv(file.file)` also loads it whole"
    ),
    "read chunks with `await file.read(CHUNK)`, or parse in a `def` run with `run_in_threadpool`",
)
def sync_upload_file_in_async(m: Module) -> Iterable[ast.AST]:
    for func in m.functions:
        uploads = m.upload_params(func)
        if not (uploads and isinstance(func, ast.AsyncFunctionDef)):
            continue
        for node in m.walk_own(func):
            if not (
                isinstance(node, ast.Attribute)
                and node.attr == "file"
                and isinstance(node.value, ast.Name)
                and node.value.id in uploads
            ):
                continue
            use = m.parents.get(node)
            handed_over = isinstance(use, ast.Call) and node in use.args  # pd.read_csv(file.file)
            read = isinstance(use, ast.Attribute) and use.attr in FILE_READS  # file.file.read()
            iterated = isinstance(use, ast.For | ast.comprehension) and use.iter is node
            if handed_over or read or iterated:
                yield node


@rule(
    "FPP207",
    "upload-read-whole",
    "`await file.read()` without a size loads the whole upload into memory",
    "stream it: `while chunk := await file.read(1024 * 1024): ...`",
)
def upload_read_whole(m: Module) -> Iterable[ast.AST]:
    for call in m.calls:
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "read"
            and not (call.args or call.keywords)
            and isinstance(func.value, ast.Name)
            and func.value.id in m.upload_params(m.scope_of(call))
        ):
            yield call


@rule(
    "FPP208",
    "create-subprocess",
    "`asyncio.create_subprocess` does not exist (AttributeError)",
    "`await asyncio.create_subprocess_exec(...)` (or `_shell`), then `await proc.communicate()`",
)
def create_subprocess(m: Module) -> Iterable[ast.AST]:
    return (
        n
        for n in m.nodes
        if isinstance(n, ast.Attribute) and m.qualname(n) == "asyncio.create_subprocess"
    )


@rule(
    "FPP209",
    "run-in-executor",
    (
        "`run_in_executor(None, f)` does not block the loop (it is no band-aid), but it drops "
        "contextvars (request id, tracing), and a bare `run_in_executor` is a NameError"
    ),
    "`await asyncio.to_thread(f, ...)` or `await run_in_threadpool(f, ...)`",
)
def run_in_executor(m: Module) -> Iterable[ast.AST]:
    for call in m.calls:
        scope = m.scope_of(call)
        names = {n.id for n in m.walk_own(scope) if isinstance(n, ast.Name)}
        if "copy_context" in names or any(
            isinstance(n, ast.Attribute) and n.attr == "copy_context" for n in m.walk_own(scope)
        ):
            continue  # carries the context over itself: `ctx = copy_context()`, `ctx.run`
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "run_in_executor":
            if call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value is None:
                yield call
        elif isinstance(func, ast.Name) and func.id == "run_in_executor":
            assigned = any(
                isinstance(n, ast.Name) and n.id == func.id and isinstance(n.ctx, ast.Store)
                for n in m.walk_own(scope)
            )
            if not assigned and m.is_builtin(func.id):
                yield call


@rule(
    "FPP210",
    "sync-network-background-task",
    (
        "sync `def` with network I/O given to `BackgroundTasks`: it holds a threadpool thread "
        "after the response, its errors only reach the log, and it is lost on restart"
    ),
    "an async client in an `async def` task, or a durable job queue for work that must happen",
)
def sync_network_background_task(m: Module) -> Iterable[ast.AST]:
    local = {f.name: f for f in m.functions if isinstance(f, ast.FunctionDef)}
    for call in m.calls:
        if not (
            isinstance(call.func, ast.Attribute) and call.func.attr == "add_task" and call.args
        ):
            continue
        task = call.args[0]
        func = local.get(task.id) if isinstance(task, ast.Name) else None
        if func and any(
            isinstance(n, ast.Call) and (m.qualname(n.func) or "").startswith(NETWORK_CALLS)
            for n in m.walk_own(func)
        ):
            yield task
