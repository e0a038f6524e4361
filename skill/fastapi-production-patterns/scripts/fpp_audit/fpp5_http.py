"""FPP5xx: HTTP surface."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .framework import is_true, kwarg, rule
from .module import Module


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
