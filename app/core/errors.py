"""Errors: services raise `AppError` kinds; one set of handlers renders every error as an
RFC 9457 problem (`application/problem+json`) carrying a stable `code` and the request id.

Nothing a client sends is echoed back in a validation error (no `input`, no `ctx`), and a 500
says only `internal_error`: traces and SQL stay in the server log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.request_id import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A database failure's traceback is logged at most this often per cause (its type).
TRACEBACK_EVERY_SECONDS = 60.0

ExceptionHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]

log = structlog.get_logger("app.errors")


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


def database_error_handler() -> ExceptionHandler:
    """`DBAPIError`s: a database that cannot be used right now is a 503 with `Retry-After`, any
    other database error is a bug and stays a 500. A pooled connection found dead and a
    database that cannot be reached (`app.core.db.DatabaseUnreachable`) are logged as one line
    per failure, with the traceback at most once a minute per cause: an outage fails every
    request, and a traceback each was megabytes of log in seconds. One throttle per app."""
    tracebacks_logged_at: dict[str, float] = {}

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            # SQLite waited SQLITE_BUSY_TIMEOUT_MS for the one write lock: shed, as admission does.
            log.warning("database_busy", error="database is locked")
            return problem_response(
                503,
                "database_busy",
                "the database is busy; retry shortly",
                headers={"Retry-After": "1"},
            )
        if not exc.connection_invalidated:
            raise exc
        # The database restarted, a proxy cut the connection, or none could be opened.
        # SQLAlchemy has invalidated the pool, so a retry gets a fresh connection.
        cause = type(exc.orig).__name__
        now = time.monotonic()
        if now - tracebacks_logged_at.get(cause, -math.inf) >= TRACEBACK_EVERY_SECONDS:
            tracebacks_logged_at[cause] = now
            log.warning("database_unavailable", cause=cause, exc_info=exc)
        else:
            log.warning("database_unavailable", cause=cause, error=str(exc.orig)[:200])
        return problem_response(
            503,
            "database_unavailable",
            "the database is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        )

    return handle


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeoutError, _pool_timeout)
    app.add_exception_handler(DBAPIError, database_error_handler())
    # Unexpected exceptions are turned into a 500 problem by RequestContextMiddleware, inside
    # CORS and request-id handling (a handler for Exception would run outside both).
