"""Errors: services raise `AppError` kinds; one set of handlers renders every error as an
RFC 9457 problem (`application/problem+json`) carrying a stable `code` and the request id; and
`problems(...)` documents them: a route names the statuses and codes it can answer with.

Nothing a client sends is echoed back in a validation error (no `input`, no `ctx`), and a 500
says only `internal_error`: traces and SQL stay in the server log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.request_id import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger("app.errors")


class Problem(BaseModel):
    """An RFC 9457 problem, as every error of this API is rendered (for the OpenAPI schema)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class AppError(Exception):
    """A failure the client can act on. Subclasses fix the HTTP status; `code` is stable."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.errors = errors


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidInput(AppError):
    status_code = 422
    code = "invalid_input"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"

    def __init__(self, detail: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})


class ContentTooLarge(StarletteHTTPException):
    """Raised while a body is being received. An HTTPException so FastAPI's body parsing lets
    it through instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


# Python 3.13 renamed some phrases (413 "Request Entity Too Large" -> "Content Too Large", 422
# "Unprocessable Entity" -> "Unprocessable Content"); a `code` must not change with the Python
# version, nor differ between a 413 refused on Content-Length and one refused while streaming.
_STABLE_CODES = {
    413: "content_too_large",
    416: "range_not_satisfiable",
    422: "unprocessable_content",
}


def _code_for_status(status: int) -> str:
    if status in _STABLE_CODES:
        return _STABLE_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


# --- documentation: what a route names in `responses=` ---------------------------------------

_PROBLEM_SCHEMA = Problem.model_json_schema()
_EXAMPLE_REQUEST_ID = "0f8e4c1b2a3d4e5f"

# The codes any route may meet for a status, raised by core or the framework itself; a route
# that names the status gets them all documented.
API_WIDE_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_request",),
    401: ("not_authenticated", "invalid_token"),
    403: ("forbidden",),
    404: ("not_found",),
    409: ("conflict",),
    413: ("content_too_large",),
    422: ("validation_error",),
    429: ("too_many_requests",),
    503: ("database_busy", "database_unavailable"),
}


def _example(status: int, code: str) -> dict[str, Any]:
    value: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": code.replace("_", " "),
        "code": code,
        "request_id": _EXAMPLE_REQUEST_ID,
    }
    if code == "validation_error":
        value["errors"] = [{"loc": ["body", "amount"], "msg": "Field required", "type": "missing"}]
    return value


def problem_content(examples: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `content` of a documented problem response."""
    media: dict[str, Any] = {"schema": _PROBLEM_SCHEMA}
    if examples:
        media["examples"] = dict(examples)
    return {PROBLEM_MEDIA_TYPE: media}


def problems(*statuses: int, **codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the statuses it answers with (each with the API-wide codes of
    that status), and by name the codes of its own errors with their status:
    `problems(401, 503, card_declined=402)`."""
    named: dict[int, list[str]] = {}
    for status in statuses:
        named.setdefault(status, []).extend(API_WIDE_CODES.get(status, (_code_for_status(status),)))
    for code, status in codes.items():
        named.setdefault(status, []).append(code)
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": problem_content(
                {code: {"summary": code, "value": _example(status, code)} for code in names}
            ),
        }
        for status, names in sorted(named.items())
    }


def document_validation_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents its automatic 422 as `application/json` `HTTPValidationError`; ours is
    the validation problem (`application/problem+json`). Rewritten in the generated schema."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "application/json" in responses.get("422", {}).get("content", {}):
                responses["422"] = problems(422)[422]
    schemas = openapi.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return openapi


def public_validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list without `input`/`ctx`/`url`: for a missing field `input` is the
    whole object the client sent, password included."""
    return [
        {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": error["type"]}
        for error in raw
    ]


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status_code, exc.code, exc.detail, headers=exc.headers, errors=exc.errors
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = public_validation_errors(exc.errors())
    return problem_response(422, "validation_error", "request validation failed", errors=errors)


_PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this path. Starlette's 405 names only the methods
    of the first route whose path matched (PUT /users/me says `Allow: GET` though PATCH is
    served too); RFC 9110 §15.5.6 asks for all of them."""
    allowed = []
    for method in _PROBED_METHODS:
        # A fresh "fastapi" dict: FastAPI's included routers write matching state into it.
        probe = {**request.scope, "method": method, "fastapi": {}}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = ", ".join(allowed)
    return problem_response(
        exc.status_code, _code_for_status(exc.status_code), detail, headers=headers
    )


async def _pool_timeout(_: Request, exc: Exception) -> JSONResponse:
    # Every connection stayed busy for DB_POOL_TIMEOUT: shed the request, ask for a retry.
    log.warning("database_busy", error=str(exc))
    return problem_response(
        503,
        "database_busy",
        "the database is saturated; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _connection_lost(_: Request, exc: Exception) -> JSONResponse:
    # A pooled connection died under us (the database restarted, a proxy cut it). SQLAlchemy
    # has already invalidated the pool, so a retry gets a fresh connection; any other
    # database error is a bug and stays a 500.
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        # SQLite waited SQLITE_BUSY_TIMEOUT_MS for the one write lock: shed, as for the pool.
        log.warning("database_busy", error="database is locked")
        return problem_response(
            503,
            "database_busy",
            "the database is busy; retry shortly",
            headers={"Retry-After": "1"},
        )
    if not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        raise exc
    log.warning("database_connection_lost", error=type(exc.orig).__name__)
    return problem_response(
        503,
        "database_unavailable",
        "the database connection was lost; retry shortly",
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_validation_problems(generate_openapi())  # cached by FastAPI, edited once
        return generate_openapi()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeoutError, _pool_timeout)
    app.add_exception_handler(DBAPIError, _connection_lost)
    # Unexpected exceptions are turned into a 500 problem by UnhandledErrorMiddleware, inside
    # CORS and request-id handling (a handler for Exception would run outside both).


class UnhandledErrorMiddleware:
    """An unexpected exception becomes a logged 500 `internal_error` problem, answered from
    inside the request-id and CORS middlewares so it still carries their headers. After the
    response has started nothing can be said: the exception goes on, the connection is cut."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_and_note_start(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_start)
        except Exception:
            log.exception("unhandled_exception", path=scope["path"], method=scope["method"])
            if response_started:
                raise
            await problem_response(500, "internal_error", "internal server error")(
                scope, receive, send
            )
