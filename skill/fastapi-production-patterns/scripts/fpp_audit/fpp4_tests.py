"""FPP4xx: tests."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .framework import kwarg, rule
from .module import Module


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
