"""FPP1xx: lifecycle of engines, clients and the app."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from .framework import kwarg, rule, words
from .module import Module
from .names import ASYNC_CLIENTS, CLIENT_WORDS, ENGINE_FACTORIES


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
