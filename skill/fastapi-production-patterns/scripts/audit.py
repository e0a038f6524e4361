#!/usr/bin/env python3
"""Find the common FastAPI production mistakes in Python source, with `ast` only.

    python audit.py app/ tests/         # path:line:col: FPP### message (fix: ...)
    python audit.py --format json src/  # the same findings for machines
    python audit.py --list-rules        # every rule, its fix, and the ruff rule that overlaps

Standard library only (Python 3.11+; run it with a Python at least as new as the syntax of the
code it reads): copy this file into any project and run it. Exit status:
0 nothing found, 1 findings, 2 usage error or a file that could not be read or parsed (2 wins).
`# noqa: FPP201` (codes may be mixed with other linters' codes) on a finding's line silences that
rule there. A bare `# noqa` does NOT silence the audit: it is usually written for another linter,
and a deliberate mistake should say which one it is. In ruff, set `lint.external = ["FPP"]`.

Where ruff's flake8-async rules already report a case, `--list-rules` names them (ASYNC210, ...):
ignore ours or theirs. Ruff's FastAPI rules (FAST001-003) have no twin here.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    message: str
    fix: str
    ruff: str = ""  # the ruff rule that already reports (part of) this, if any


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str
    fix: str


RULES: dict[str, Rule] = {}
CHECKS: list[tuple[Rule, Callable[[Module], Iterable[ast.AST]]]] = []  # filled by @rule


Check = Callable[["Module"], Iterable[ast.AST]]


def rule(code: str, name: str, message: str, fix: str, ruff: str = "") -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES[code] = Rule(code, name, message, fix, ruff)
        CHECKS.append((RULES[code], check))
        return check

    return register


ENGINE_FACTORIES = {
    "sqlalchemy.create_engine",
    "sqlalchemy.engine.create_engine",
    "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.ext.asyncio.engine.create_async_engine",
    "sqlmodel.create_engine",
}
ASYNC_CLIENTS = {
    f"redis.asyncio.{name}"
    for name in ("Redis", "from_url", "Redis.from_url", "ConnectionPool", "ConnectionPool.from_url")
} | {"httpx.AsyncClient", "aiohttp.ClientSession", "asyncpg.create_pool"}
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}
NOT_ROUTERS = ("unittest", "mock", "pytest", "respx", "responses", "requests_mock")
PYDANTIC_BASES = {
    "pydantic.BaseModel",
    "pydantic.main.BaseModel",
    "pydantic.RootModel",
    "pydantic_settings.BaseSettings",
    "sqlmodel.SQLModel",
}
UPLOAD_FILE = {
    "fastapi.UploadFile",
    "fastapi.datastructures.UploadFile",
    "starlette.datastructures.UploadFile",
}
SYNC_SESSIONS = {"sqlalchemy.orm.Session", "sqlalchemy.orm.session.Session", "sqlmodel.Session"}


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


SYNC_REDIS = {"redis.Redis", "redis.StrictRedis", "redis.from_url", "redis.Redis.from_url"}
V1_CONFIG_KEYS = word_set(
    "orm_mode allow_population_by_field_name schema_extra anystr_strip_whitespace "
    "validate_all max_anystr_length min_anystr_length json_encoders allow_mutation "
    "underscore_attrs_are_private keep_untouched copy_on_model_validation smart_union "
    "validate_assignment arbitrary_types_allowed use_enum_values extra env_file env_prefix "
    "fields alias_generator allow_reuse frozen case_sensitive"
)
MONEY_WORDS = word_set(
    "amount price balance total subtotal cost fee fees salary wage payment charge refund tax "
    "discount revenue income budget payout deposit withdrawal fare tip rent profit credit "
    "debit spend money"
)
NOT_MONEY_WORDS = word_set(
    "count seconds secs sec ms millis time duration ratio rate percent pct percentage weight "
    "size bytes score factor hours minutes days latency share elapsed timeout interval delay "
    "limit tokens token items requests retries attempts steps pages"
)
CLIENT_WORDS = {"engine", "client", "session", "connection", "conn", "redis", "pool", "db"}
ACTING_USER_FIELDS = {"user_id", "sender_id", "from_user_id", "payer_id", "owner_id"}
LIBRARY_TYPES = word_set(
    "fastapi starlette httpx requests aiohttp sqlalchemy redis typing collections datetime "
    "uuid decimal enum pathlib pydantic ipaddress"
)
FILE_READS = {"read", "readline", "readlines", "write", "writelines", "truncate"}
NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
NETWORK_CALLS = ("smtplib.", "requests.", "httpx.", "urllib.request.", "urllib3.", "socket.")


class Module:
    """One parsed file and the facts the rules share: imports, parents, aliases, model classes."""

    def __init__(self, path: str, source: str, config_dir: Path) -> None:
        self.path = path
        self.tree = ast.parse(source, filename=path)
        self.lines = source.splitlines()
        self.config_dir = config_dir
        self.imports: dict[str, str] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.calls: list[ast.Call] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.classes: list[ast.ClassDef] = []
        self.nodes = list(ast.walk(self.tree))
        self._own: dict[ast.AST, list[ast.AST]] = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.imports[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Call):
                self.calls.append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions.append(node)
            elif isinstance(node, ast.ClassDef):
                self.classes.append(node)
        self.globals: dict[str, ast.expr] = {}
        for stmt in self.tree.body:
            targets = (
                stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
            )
            value = getattr(stmt, "value", None)
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and value is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.globals[target.id] = value
            elif type(stmt).__name__ == "TypeAlias":  # `type X = ...` (3.12+)
                self.globals[stmt.name.id] = stmt.value  # type: ignore[attr-defined]
        self.toplevel: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = {
            f.name: f
            for f in self.tree.body
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        self.models: set[str] = set()
        for cls in self.classes:  # definition order: a subclass follows its base
            if any(self.is_model_base(base) for base in cls.bases):
                self.models.add(cls.name)
        self.has_patch_routes = any(self.route_methods(f) & {"patch"} for f in self.functions)

    # --- names -------------------------------------------------------------------------------
    def qualname(self, node: ast.AST | None) -> str | None:
        """`rq.get` with `import requests as rq` -> "requests.get"; None when not imported."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def name_of(self, node: ast.expr) -> str:
        """The qualified name when imported, else the name as written (`Depends` in a snippet)."""
        return self.qualname(node) or ast.unparse(node)

    def makes(self, call: ast.Call, names: set[str]) -> bool:
        """A call to one of `names`, directly, or through a module-level function that returns
        one, or a module-level class whose `__init__` makes one."""
        if self.qualname(call.func) in names:
            return True
        maker = self.toplevel.get(call.func.id) if isinstance(call.func, ast.Name) else None
        if isinstance(maker, ast.ClassDef):
            init = next((f for f in maker.body if getattr(f, "name", "") == "__init__"), None)
            return init is not None and any(
                isinstance(n, ast.Call) and self.qualname(n.func) in names
                for n in self.walk_own(init)
            )
        return maker is not None and any(
            isinstance(r, ast.Return)
            and isinstance(r.value, ast.Call)
            and self.qualname(r.value.func) in names
            for r in self.walk_own(maker)
        )

    def calls_to(self, names: set[str]) -> Iterator[ast.Call]:
        return (c for c in self.calls if self.qualname(c.func) in names)

    def is_builtin(self, name: str) -> bool:
        return name not in self.imports and name not in self.globals and name not in self.toplevel

    def is_model_base(self, base: ast.expr) -> bool:
        base = base.value if isinstance(base, ast.Subscript) else base
        return self.qualname(base) in PYDANTIC_BASES or (
            isinstance(base, ast.Name) and base.id in self.models
        )

    def annotation_names(self, ann: ast.AST | None, seen: frozenset[str] = frozenset()) -> set[str]:
        """Qualified (or local) names inside an annotation, through module-level aliases."""
        names: set[str] = set()
        if ann is None:
            return names
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return names
        for node in ast.walk(ann):
            if isinstance(node, ast.Attribute) and (q := self.qualname(node)):
                names.add(q)
            elif isinstance(node, ast.Name):
                names.add(self.imports.get(node.id, node.id))
                alias = self.globals.get(node.id)
                if alias is not None and node.id not in seen:
                    names |= self.annotation_names(alias, seen | {node.id})
        return names

    # --- structure ---------------------------------------------------------------------------
    def scope_of(self, node: ast.AST) -> ast.AST:
        """The innermost function or lambda around a node, or the module."""
        parent = self.parents.get(node)
        while parent is not None and not isinstance(
            parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        ):
            parent = self.parents.get(parent)
        return parent if parent is not None else self.tree

    def in_async_def(self, node: ast.AST) -> bool:
        return isinstance(self.scope_of(node), ast.AsyncFunctionDef)

    def at_import_time(self, node: ast.AST) -> bool:
        """True for code that runs on `import` (module or class body, not `if __name__ == ...`)."""
        parent = self.parents.get(node)
        while parent is not None:
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                return False
            if isinstance(parent, ast.If) and "__name__" in ast.unparse(parent.test):
                return False
            parent = self.parents.get(parent)
        return True

    def route_methods(self, func: ast.AST) -> set[str]:
        """HTTP methods of a route handler (`@app.patch(...)`, `@router.api_route(methods=...)`)."""
        methods: set[str] = set()
        for deco in getattr(func, "decorator_list", []):
            if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
                continue
            if deco.func.attr not in ROUTE_METHODS:
                continue
            owner = self.name_of(deco.func.value)
            if owner.startswith(NOT_ROUTERS) or not (deco.args or deco.keywords):
                continue
            if deco.func.attr != "api_route":
                methods.add(deco.func.attr)
            for kw in deco.keywords:
                if kw.arg == "methods" and isinstance(kw.value, ast.List | ast.Tuple | ast.Set):
                    methods |= {
                        str(e.value).lower() for e in kw.value.elts if isinstance(e, ast.Constant)
                    }
        return methods

    def decorated_with(self, func: ast.AST, suffixes: tuple[str, ...]) -> bool:
        for deco in getattr(func, "decorator_list", []):
            target = deco.func if isinstance(deco, ast.Call) else deco
            name = self.name_of(target)
            if name.endswith(suffixes):
                return True
        return False

    def is_dependency_param(self, arg: ast.arg, default: ast.expr | None) -> bool:
        found = self.annotation_names(arg.annotation)
        if isinstance(default, ast.Call):
            found.add(self.name_of(default.func))
        return any(n.endswith(("Depends", "Security")) for n in found)

    def params(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> Iterator[tuple[ast.arg, ast.expr | None]]:
        args = func.args
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        yield from zip(positional, defaults, strict=True)
        yield from zip(args.kwonlyargs, args.kw_defaults, strict=True)

    def upload_params(self, func: ast.AST) -> set[str]:
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            return set()
        return {
            a.arg for a, _ in self.params(func) if self.annotation_names(a.annotation) & UPLOAD_FILE
        }

    def walk_own(self, func: ast.AST) -> list[ast.AST]:
        """Nodes of a function body, not descending into nested functions, lambdas or classes."""
        if func not in self._own:
            body = getattr(func, "body", [])
            own, stack = [], list(body) if isinstance(body, list) else [body]  # a lambda's body
            while stack:
                node = stack.pop()
                own.append(node)
                stack += (c for c in ast.iter_child_nodes(node) if not isinstance(c, NESTED_SCOPES))
            self._own[func] = own
        return self._own[func]

    def is_generator(self, func: ast.AST) -> bool:
        return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in self.walk_own(func))

    def asyncio_mode_auto(self) -> bool:
        return pytest_asyncio_mode(self.config_dir) == "auto"


def is_mapped(stmt: ast.AnnAssign) -> bool:
    """An ORM column: `total: Mapped[float]`."""
    ann = stmt.annotation
    return isinstance(ann, ast.Subscript) and ast.unparse(ann.value).endswith("Mapped")


def kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def words(name: str) -> set[str]:
    return set(re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower().split("_"))


# === FPP1xx: lifecycle of engines, clients and the app ==========================================


@rule(
    "FPP101",
    "engine-at-import",
    (
        "database engine created at import time: every importer and every forked worker shares its "
        "pool"
    ),
    "create it in the lifespan, store it on app.state, dispose it at shutdown",
)
def engine_at_import(m: Module) -> Iterable[ast.AST]:
    return (c for c in m.calls if m.at_import_time(c) and m.makes(c, ENGINE_FACTORIES))


@rule(
    "FPP107",
    "async-client-at-import",
    "async client or pool created at import: its connections bind to the first event loop that "
    "uses them (tests, reloads) and nothing closes it",
    "create it in the lifespan and close it there (`await client.aclose()`)",
)
def async_client_at_import(m: Module) -> Iterable[ast.AST]:
    return (c for c in m.calls if m.at_import_time(c) and m.makes(c, ASYNC_CLIENTS))


@rule(
    "FPP102",
    "engine-never-disposed",
    "engine created in a lifespan, fixture or yield dependency that never disposes it",
    (
        "`await engine.dispose()` in a `finally` after the yield (or "
        "stack.push_async_callback(engine.dispose))"
    ),
)
def engine_never_disposed(m: Module) -> Iterable[ast.AST]:
    for func in m.functions:
        managed = m.is_generator(func) or m.decorated_with(
            func, ("asynccontextmanager", "contextmanager")
        )
        if not managed:
            continue
        own = list(m.walk_own(func))
        if any(isinstance(n, ast.Attribute) and n.attr == "dispose" for n in own):
            continue
        yield from (
            n for n in own if isinstance(n, ast.Call) and m.qualname(n.func) in ENGINE_FACTORIES
        )


@rule(
    "FPP103",
    "on-event",
    (
        "`on_event`/`add_event_handler`/`on_startup=` are deprecated, and ignored when a lifespan "
        "is set"
    ),
    "one `lifespan` async context manager: `FastAPI(lifespan=lifespan)`",
)
def on_event(m: Module) -> Iterable[ast.AST]:
    for call in m.calls:
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"on_event", "add_event_handler"}
            and call.args
            and ast.unparse(func.value) != "self"  # the framework's own implementation
        ):
            if isinstance(call.args[0], ast.Constant) and call.args[0].value in {
                "startup",
                "shutdown",
            }:
                yield call
        elif m.qualname(func) in {"fastapi.FastAPI", "starlette.applications.Starlette"}:
            yield from (kw for kw in call.keywords if kw.arg in {"on_startup", "on_shutdown"})


@rule(
    "FPP104",
    "engine-without-stale-check",
    (
        "pooled engine without `pool_pre_ping` or `pool_recycle`: the first query after the server "
        "or a proxy drops idle connections fails"
    ),
    "`pool_pre_ping=True` (and `pool_recycle` below the server's idle timeout)",
)
def engine_without_stale_check(m: Module) -> Iterable[ast.AST]:
    name = Path(m.path).name
    if name == "conftest.py" or name.startswith("test_") or "tests" in Path(m.path).parts:
        return  # a test database does not go idle behind a proxy
    for call in m.calls_to(ENGINE_FACTORIES):
        scope = m.scope_of(call)
        if not m.is_generator(scope) and any(
            isinstance(n, ast.Attribute) and n.attr == "dispose" for n in m.walk_own(scope)
        ):
            continue  # made, used and disposed in one function: its connections never sit idle
        given = {kw.arg for kw in call.keywords}
        url = call.args[0] if call.args else kwarg(call, "url")
        sqlite = isinstance(url, ast.Constant) and str(url.value).startswith("sqlite")
        if None in given or sqlite or given & {"pool_pre_ping", "pool_recycle", "poolclass"}:
            continue
        yield call


@rule(
    "FPP105",
    "cached-client-factory",
    (
        "`lru_cache`/`cache` on a function that makes a client or connection: made outside the "
        "lifespan, never closed, shared across event loops"
    ),
    "create it in the lifespan, keep it on app.state, hand it out with a dependency",
)
def cached_client_factory(m: Module) -> Iterable[ast.AST]:
    caches = {"functools.lru_cache", "functools.cache", "async_lru.alru_cache"}
    for func in m.functions:
        for deco in func.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            if m.qualname(target) not in caches:
                continue
            # The return annotation says what it makes; without one, the name does.
            made = {w for n in m.annotation_names(func.returns) for w in words(n.split(".")[-1])}
            made = made or words(func.name)
            if made & CLIENT_WORDS and not made & {"settings", "config", "options"}:
                yield deco


@rule(
    "FPP106",
    "dependency-reads-global-app",
    (
        "function reads `app.state` through the module-level `app`: it breaks with an app factory "
        "and in tests"
    ),
    "take `request: Request` and read `request.app.state`",
)
def dependency_reads_global_app(m: Module) -> Iterable[ast.AST]:
    app_value = m.globals.get("app")
    global_app = (
        m.qualname(app_value.func) == "fastapi.FastAPI"
        if isinstance(app_value, ast.Call)
        else False
    )
    if not (global_app or m.imports.get("app", "").endswith(".app")):
        return
    for func in m.functions:
        local = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
        if "app" in local or func.name == "lifespan":
            continue
        for node in m.walk_own(func):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "state"
                and isinstance(node.value, ast.Name)
                and node.value.id == "app"
                and (m.is_generator(func) or func.name.startswith("get_"))
            ):
                yield node


# === FPP2xx: blocking the event loop =============================================================


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


# === FPP3xx: Pydantic 2 and money ================================================================


@rule(
    "FPP301",
    "pydantic-v1-validator",
    (
        "`@validator`/`@root_validator` are Pydantic 1 (deprecated; `@root_validator` raises "
        "without skip_on_failure)"
    ),
    "`@field_validator('x')` / `@model_validator(mode='after')` with `@classmethod`",
)
def pydantic_v1_validator(m: Module) -> Iterable[ast.AST]:
    old = {
        "pydantic.validator",
        "pydantic.root_validator",
        "pydantic.class_validators.validator",
        "pydantic.class_validators.root_validator",
    }
    for func in m.functions:
        for deco in func.decorator_list:
            if m.qualname(deco.func if isinstance(deco, ast.Call) else deco) in old:
                yield deco


@rule(
    "FPP302",
    "pydantic-class-config",
    "`class Config` in a model is Pydantic 1 (`orm_mode` is ignored: no from_attributes)",
    "`model_config = ConfigDict(from_attributes=True, ...)`",
)
def pydantic_class_config(m: Module) -> Iterable[ast.AST]:
    for cls in m.classes:
        for inner in cls.body:
            if isinstance(inner, ast.ClassDef) and inner.name == "Config":
                keys = {
                    t.id
                    for s in inner.body
                    if isinstance(s, ast.Assign)
                    for t in s.targets
                    if isinstance(t, ast.Name)
                }
                keys |= {
                    s.target.id
                    for s in inner.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                }
                if cls.name in m.models or keys & V1_CONFIG_KEYS:
                    yield inner


@rule(
    "FPP303",
    "pydantic-v1-method",
    (
        "Pydantic 1 method (`.dict()`, `.json()`, `parse_obj`, `from_orm`, ...): deprecated, "
        "`from_orm` fails without from_attributes"
    ),
    (
        "`model_dump()`, `model_dump_json()`, `model_validate()`, `model_validate_json()`, "
        "`model_copy()`"
    ),
)
def pydantic_v1_method(m: Module) -> Iterable[ast.AST]:
    classmethods = {
        "parse_obj",
        "parse_raw",
        "parse_file",
        "from_orm",
        "schema_json",
        "update_forward_refs",
    }
    instance = {"dict", "json", "copy"}
    pydantic_kwargs = {"exclude_unset", "exclude_none", "exclude_defaults", "by_alias"}
    for call in m.calls:
        func = call.func
        if not isinstance(func, ast.Attribute):
            continue
        receiver = func.value
        if (
            func.attr in classmethods
            and isinstance(receiver, ast.Name)
            and receiver.id[:1].isupper()
        ):
            yield call
        elif func.attr in instance and isinstance(receiver, ast.Name):
            # dict.copy() takes no `update=`; the exclude_* keywords are Pydantic's.
            pydantic_only = kwarg(call, "update") if func.attr == "copy" else None
            if func.attr != "copy" and {kw.arg for kw in call.keywords} & pydantic_kwargs:
                pydantic_only = call
            if pydantic_only is not None or model_instance(m, call, receiver.id):
                yield call


def model_instance(m: Module, call: ast.Call, name: str) -> bool:
    """Is `name` a model here: a parameter annotated with a model class, or a route's body."""
    func = m.scope_of(call)
    if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    for arg, default in m.params(func):
        if arg.arg != name or m.is_dependency_param(arg, default):
            continue
        names = m.annotation_names(arg.annotation)
        if names & m.models:
            return True
        if m.route_methods(func) and isinstance(arg.annotation, ast.Name):
            # A route's body parameter: a class of the project, not `request: Request`.
            origin = m.imports.get(arg.annotation.id, "").split(".")[0]
            return arg.annotation.id[:1].isupper() and origin not in LIBRARY_TYPES
    return False


@rule(
    "FPP304",
    "pydantic-missing-name",
    (
        "name that Pydantic 2 does not export (`Optional`, `List`, ... come from typing; "
        "`BaseSettings` moved)"
    ),
    "`from typing import ...` (or `X | None`); `from pydantic_settings import BaseSettings`",
)
def pydantic_missing_name(m: Module) -> Iterable[ast.AST]:
    missing = {"Optional", "List", "Dict", "Union", "Any", "Tuple", "Set", "BaseSettings"}
    for node in m.nodes:
        if isinstance(node, ast.ImportFrom) and node.module == "pydantic":
            yield from (a for a in node.names if a.name in missing)


@rule(
    "FPP305",
    "deprecated-field-argument",
    (
        "`example=`/`regex=`/`min_items=` are Pydantic 1 / old FastAPI arguments (deprecated or "
        "removed)"
    ),
    "`examples=[...]`, `pattern=`, `min_length=`/`max_length=`",
)
def deprecated_field_argument(m: Module) -> Iterable[ast.AST]:
    owners = ("pydantic.", "fastapi.", "sqlmodel.")
    fields = {"Field", "Query", "Path", "Body", "Header", "Cookie", "Form", "File"}
    for call in m.calls:
        q = m.qualname(call.func) or ""
        if q.startswith(owners) and q.rsplit(".", 1)[-1] in fields:
            yield from (
                kw
                for kw in call.keywords
                if kw.arg in {"example", "regex", "min_items", "max_items", "const"}
                # `regex=regex`: a wrapper passing its caller's argument through
                and not (isinstance(kw.value, ast.Name) and kw.value.id == kw.arg)
            )


@rule(
    "FPP306",
    "float-money",
    "money annotated as `float` (0.1 + 0.2 != 0.3; rounding drifts)",
    "`Decimal` (with max_digits/decimal_places) or integer minor units (cents)",
)
def float_money(m: Module) -> Iterable[ast.AST]:
    def money_float(name: str, ann: ast.AST | None) -> bool:
        w = words(name)
        return (
            bool(w & MONEY_WORDS)
            and not w & NOT_MONEY_WORDS
            and "float" in m.annotation_names(ann)
            and m.is_builtin("float")
        )

    for cls in m.classes:
        # A bare `total` is money in a model (`Order.total`), not in `ClientTimeout.total`.
        money_class = cls.name in m.models or bool(words(cls.name) & MONEY_WORDS)
        for stmt in cls.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and money_float(stmt.target.id, stmt.annotation)
                and (money_class or words(stmt.target.id) - {"total"} or is_mapped(stmt))
            ):
                yield stmt.annotation
    for func in m.functions:
        # Parameters only where money is the subject: a route, or `process_payment(amount=...)`,
        # not `incrbyfloat(name, amount: float)`.
        if m.route_methods(func) or words(func.name) & MONEY_WORDS:
            yield from (
                a.annotation
                for a, _ in m.params(func)
                if a.annotation and money_float(a.arg, a.annotation)
            )


@rule(
    "FPP307",
    "patch-without-exclude-unset",
    (
        "`model_dump()`/`.dict()` of the body in a PATCH handler without `exclude_unset=True`: "
        "omitted fields overwrite data with defaults"
    ),
    "`body.model_dump(exclude_unset=True)`",
)
def patch_without_exclude_unset(m: Module) -> Iterable[ast.AST]:
    for func in m.functions:
        if "patch" not in m.route_methods(func):
            continue
        body_params = {a.arg for a, d in m.params(func) if not m.is_dependency_param(a, d)}
        for node in m.walk_own(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"model_dump", "dict"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in body_params
            ):
                unset = kwarg(node, "exclude_unset")
                if unset is None or (isinstance(unset, ast.Constant) and not unset.value):
                    yield node


@rule(
    "FPP308",
    "user-id-in-payment-body",
    "payment/transfer request model takes `user_id` from the body: any caller can act as anyone",
    "take the acting user from the authentication dependency, never from the body",
)
def user_id_in_payment_body(m: Module) -> Iterable[ast.AST]:
    money_models = {
        "payment",
        "transfer",
        "charge",
        "withdrawal",
        "withdraw",
        "deposit",
        "payout",
        "refund",
    }
    for cls in m.classes:
        if (
            cls.name in m.models
            and words(cls.name) & money_models
            and not words(cls.name) & {"response", "out", "read", "public"}
        ):
            yield from (
                stmt
                for stmt in cls.body
                if isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id in ACTING_USER_FIELDS
            )


# === FPP4xx: tests ================================================================================


@rule(
    "FPP401",
    "asyncclient-app",
    "`AsyncClient(app=...)` was removed in httpx 0.28 (TypeError)",
    "`AsyncClient(transport=ASGITransport(app=app), base_url='http://test')`",
)
def asyncclient_app(m: Module) -> Iterable[ast.AST]:
    return (
        app
        for c in m.calls_to({"httpx.AsyncClient", "httpx.Client"})
        if (app := kwarg(c, "app")) is not None
    )


@rule(
    "FPP402",
    "async-fixture-strict-mode",
    (
        "`@pytest.fixture` on an `async def` in pytest-asyncio strict mode: pytest fails the test "
        "(async fixture 'with no plugin or hook that handled it'; older pytest passed a coroutine)"
    ),
    '`@pytest_asyncio.fixture`, or `asyncio_mode = "auto"` in the pytest config',
)
def async_fixture_strict_mode(m: Module) -> Iterable[ast.AST]:
    if "anyio" in m.imports or m.asyncio_mode_auto() or any("anyio" in line for line in m.lines):
        return
    for func in m.functions:
        if isinstance(func, ast.AsyncFunctionDef):
            for deco in func.decorator_list:
                if (
                    m.qualname(deco.func if isinstance(deco, ast.Call) else deco)
                    == "pytest.fixture"
                ):
                    yield deco


@rule(
    "FPP403",
    "override-drops-cleanup",
    (
        "a yield dependency overridden by a function that returns: the override skips its cleanup "
        "(rollback, close)"
    ),
    "override it with a generator too: `async def override(): async with ... as s: yield s`",
)
def override_drops_cleanup(m: Module) -> Iterable[ast.AST]:
    local = {f.name: f for f in m.functions}
    yield_deps = {"get_db", "get_session", "get_async_session", "get_db_session"}
    for node in m.nodes:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Subscript)
        ):
            continue
        target = node.targets[0]
        if not (
            isinstance(target.value, ast.Attribute) and target.value.attr == "dependency_overrides"
        ):
            continue
        key = target.slice
        key_name = (
            key.id
            if isinstance(key, ast.Name)
            else key.attr
            if isinstance(key, ast.Attribute)
            else ""
        )
        key_yields = (
            m.is_generator(local[key_name]) if key_name in local else key_name in yield_deps
        )
        value = node.value
        override = local.get(value.id) if isinstance(value, ast.Name) else value
        if not (
            key_yields and isinstance(override, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef)
        ):
            continue
        if isinstance(override, ast.Lambda):
            returned = [override.body]
        elif m.is_generator(override):
            continue
        else:
            returned = [
                r.value for r in m.walk_own(override) if isinstance(r, ast.Return) and r.value
            ]
        # Handing over a fixture's own session (a parameter of the enclosing fixture) is fine:
        # the fixture does the cleanup.
        owners = m.scope_of(override)
        fixture_values = (
            {a.arg for a in ast.walk(owners.args) if isinstance(a, ast.arg)}
            if isinstance(owners, ast.FunctionDef | ast.AsyncFunctionDef)
            else set()
        )
        if not all(isinstance(r, ast.Name) and r.id in fixture_values for r in returned):
            yield value


# === FPP5xx: HTTP surface ========================================================================


@rule(
    "FPP501",
    "client-per-request",
    "new `httpx.AsyncClient` per request: a new connection pool and TLS handshake every call",
    "one client made in the lifespan (app.state), handed out by a dependency",
)
def client_per_request(m: Module) -> Iterable[ast.AST]:
    return (
        c
        for c in m.calls_to({"httpx.AsyncClient", "aiohttp.ClientSession"})
        if m.route_methods(m.scope_of(c))
    )


@rule(
    "FPP502",
    "commit-after-yield",
    (
        "session dependency commits after `yield`: FastAPI runs that after the response is sent, "
        "so a failed commit still answered 2xx"
    ),
    (
        "commit in the endpoint/service before returning; keep only rollback/close after the yield "
        '(or `Depends(dep, scope="function")`)'
    ),
)
def commit_after_yield(m: Module) -> Iterable[ast.AST]:
    function_scoped = {
        ast.unparse(c.args[0])
        for c in m.calls
        if m.name_of(c.func).endswith("Depends")
        and c.args
        and isinstance(scope := kwarg(c, "scope"), ast.Constant)
        and scope.value == "function"
    }
    for func in m.functions:
        if (
            func.name in function_scoped
            or "lifespan" in func.name
            or m.decorated_with(func, ("contextmanager", "fixture"))
        ):
            continue
        own = m.walk_own(func)
        yielded_at = {
            n.value.id: n.lineno
            for n in own
            if isinstance(n, ast.Yield) and isinstance(n.value, ast.Name)
        }
        if not yielded_at:
            continue
        first, yielded = min(yielded_at.values()), set(yielded_at)
        for node in own:
            if (  # `yield session` ... `await session.commit()`
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "commit"
                and ast.unparse(node.func.value) in yielded
                and node.lineno > first
            ):
                yield node
            elif isinstance(
                node, ast.AsyncWith | ast.With
            ):  # `async with maker.begin() as s: yield s`
                yield from (
                    item.context_expr
                    for item in node.items
                    if isinstance(item.context_expr, ast.Call)
                    and isinstance(item.context_expr.func, ast.Attribute)
                    and item.context_expr.func.attr == "begin"
                    and isinstance(item.optional_vars, ast.Name)
                    and item.optional_vars.id in yielded
                )


@rule(
    "FPP503",
    "cors-wildcard-credentials",
    (
        '`allow_origins=["*"]` with `allow_credentials=True`: Starlette then echoes any origin, so '
        "every site can call with the user's cookies"
    ),
    "list the exact origins that may send credentials",
)
def cors_wildcard_credentials(m: Module) -> Iterable[ast.AST]:
    for call in m.calls:
        origins, regex = kwarg(call, "allow_origins"), kwarg(call, "allow_origin_regex")
        wildcard = isinstance(origins, ast.List | ast.Tuple | ast.Set) and any(
            isinstance(e, ast.Constant) and e.value == "*" for e in origins.elts
        )
        wildcard |= isinstance(regex, ast.Constant) and regex.value in {".*", "^.*$", ".+"}
        if wildcard and is_true(kwarg(call, "allow_credentials")):
            yield origins or regex or call


@rule(
    "FPP504",
    "cors-methods-without-patch",
    (
        "CORS `allow_methods` lists methods but not PATCH, and the app has PATCH routes: browsers "
        "fail the preflight"
    ),
    'add "PATCH" to `allow_methods`',
)
def cors_methods_without_patch(m: Module) -> Iterable[ast.AST]:
    # Yields candidates; main() keeps them only when some audited file has a PATCH route.
    for call in m.calls:
        methods = kwarg(call, "allow_methods")
        if isinstance(methods, ast.List | ast.Tuple | ast.Set) and all(
            isinstance(e, ast.Constant) for e in methods.elts
        ):
            values = {str(e.value).upper() for e in methods.elts if isinstance(e, ast.Constant)}
            if values and not values & {"*", "PATCH"}:
                yield methods


@rule(
    "FPP505",
    "value-error-as-400",
    (
        "`ValueError`/`Exception` text sent to the client as a 400: internal messages leak, and "
        "bugs look like client errors"
    ),
    "raise your own error types and map each to a stable error code and message",
)
def value_error_as_400(m: Module) -> Iterable[ast.AST]:
    broad = {"ValueError", "Exception"}
    for node in m.nodes:
        if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
            caught = {
                ast.unparse(t)
                for t in (node.type.elts if isinstance(node.type, ast.Tuple) else [node.type])
            }
            if not caught & broad:
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Raise) and isinstance(inner.exc, ast.Call):
                    text = ast.unparse(inner.exc)
                    if (
                        "HTTPException" in text
                        and f"str({node.name})" in text
                        and ("400" in text or "BAD_REQUEST" in text)
                    ):
                        yield inner
    handlers = {}
    for call in m.calls:
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"exception_handler", "add_exception_handler"}
            and call.args
            and ast.unparse(call.args[0]) in broad
        ):
            handlers[call] = call.args[1] if len(call.args) > 1 else None
    for handler in m.functions:
        registered = any(d in handlers for d in handler.decorator_list) or any(
            isinstance(h, ast.Name) and h.id == handler.name for h in handlers.values()
        )
        params = [a.arg for a in handler.args.args]
        if registered and len(params) >= 2:
            yield from (
                n
                for n in ast.walk(handler)
                if isinstance(n, ast.Call) and ast.unparse(n) == f"str({params[1]})"
            )


@rule(
    "FPP506",
    "deprecated-async-driver",
    "`aioredis`/`asyncio_redis`/`databases` are superseded (aioredis was merged into redis-py 4.2)",
    "`redis.asyncio`; SQLAlchemy 2's `create_async_engine` with a lifespan",
)
def deprecated_async_driver(m: Module) -> Iterable[ast.AST]:
    old = {"aioredis", "asyncio_redis", "databases"}
    for node in m.nodes:
        if isinstance(node, ast.Import):
            yield from (a for a in node.names if a.name.split(".")[0] in old)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] in old
        ):
            yield node


# === Driver =======================================================================================

SKIP_DIRS = {".venv", "venv", "node_modules", ".git", "__pycache__", "site-packages"}


def python_files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            yield from (Path(root) / f for f in sorted(files) if f.endswith(".py"))


_MODES: dict[Path, str | None] = {}


def pytest_asyncio_mode(start: Path) -> str | None:
    """`asyncio_mode` from the nearest pytest config (pytest.ini, pyproject.toml, tox.ini, "
    "setup.cfg)."""
    if start in _MODES:
        return _MODES[start]
    mode: str | None = None
    for folder in [start, *start.parents]:
        found = False
        for name, section in (
            ("pytest.ini", "pytest"),
            ("pyproject.toml", ""),
            ("tox.ini", "pytest"),
            ("setup.cfg", "tool:pytest"),
        ):
            file = folder / name
            if not file.is_file():
                continue
            try:
                if name == "pyproject.toml":
                    tool = tomllib.loads(file.read_text(encoding="utf-8")).get("tool", {})
                    options = tool.get("pytest", {})
                    options = options.get("ini_options", options)
                    if not options:
                        continue
                    mode = options.get("asyncio_mode")
                else:
                    parser = configparser.ConfigParser(interpolation=None)
                    parser.read(file, encoding="utf-8")
                    if not parser.has_section(section):
                        continue
                    mode = parser.get(section, "asyncio_mode", fallback=None)
            except (OSError, ValueError, configparser.Error):
                continue
            found = True
            break
        if found:
            break
    _MODES[start] = mode
    return mode


NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.IGNORECASE)


def silenced(lines: list[str], line: int, code: str) -> bool:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    match = NOQA.search(text)
    return match is not None and code in re.split(r"[\s,]+", match["codes"].upper())


def audit_source(
    source: str, path: str, config_dir: Path, wanted: Callable[[str], bool] = lambda code: True
) -> tuple[list[Finding], bool]:
    """Findings of one file, and whether it has a PATCH route (FPP504 looks across files)."""
    module = Module(path, source, config_dir)
    findings = []
    for rule_, check in CHECKS:
        if not wanted(rule_.code):
            continue
        for node in check(module):
            line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
            if not silenced(module.lines, line, rule_.code):
                findings.append(Finding(path, line, col, rule_.code, rule_.message, rule_.fix))
    return sorted(findings, key=lambda f: (f.line, f.col, f.code)), module.has_patch_routes


def selector(select: str | None, ignore: str | None) -> Callable[[str], bool]:
    chosen = [c.strip().upper() for c in (select or "FPP").split(",") if c.strip()]
    dropped = [c.strip().upper() for c in (ignore or "").split(",") if c.strip()]
    return lambda code: (
        code.startswith(tuple(chosen)) and not code.startswith(tuple(dropped) or ("\0",))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="audit.py",
        description="Find common FastAPI production mistakes (fastapi-production-patterns skill).",
        epilog="Exit status: 0 clean, 1 findings, 2 usage error or unreadable/unparsable file. "
        "Silence one finding with `# noqa: FPP###` on its line (a bare `# noqa` does not count).",
    )
    parser.add_argument("paths", nargs="*", help="files or directories (recursing into *.py)")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    parser.add_argument("--select", help="comma-separated codes or prefixes to run (default: all)")
    parser.add_argument("--ignore", help="comma-separated codes or prefixes to skip")
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    args = parser.parse_args(argv)
    if args.list_rules:
        for r in sorted(RULES.values(), key=lambda r: r.code):
            overlap = f" [ruff also: {r.ruff}]" if r.ruff else ""
            print(f"{r.code} {r.name}: {r.message}{overlap}\n    fix: {r.fix}")
        return 0
    if not args.paths:
        parser.error("give at least one file or directory")
    unknown = [p for p in args.paths if not Path(p).exists()]
    if unknown:
        parser.error(f"no such file or directory: {', '.join(unknown)}")
    wanted = selector(args.select, args.ignore)
    findings: list[Finding] = []
    errors: list[dict[str, str]] = []
    patch_routes = False
    for path in python_files(args.paths):
        try:
            source = path.read_text(encoding="utf-8-sig")
            found, has_patch = audit_source(source, str(path), path.resolve().parent, wanted)
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, SyntaxError):  # newer syntax than this interpreter knows?
                error += f" (parsed with Python {sys.version_info[0]}.{sys.version_info[1]})"
            errors.append({"path": str(path), "error": error})
            continue
        findings += found
        patch_routes |= has_patch
    if not patch_routes:
        findings = [f for f in findings if f.code != "FPP504"]
    if args.format == "json":
        print(json.dumps({"findings": [asdict(f) for f in findings], "errors": errors}, indent=2))
    else:
        for f in findings:
            print(f"{f.path}:{f.line}:{f.col}: {f.code} {f.message} (fix: {f.fix})")
        for e in errors:
            print(f"{e['path']}: cannot audit: {e['error']}", file=sys.stderr)
    return 2 if errors else 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
