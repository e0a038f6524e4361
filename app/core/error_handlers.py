"""The handlers that render every error as an RFC 9457 problem carrying a stable `code` and
the request id, and the middleware that turns an unexpected exception into a 500 problem.

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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.allow import allowed_methods
from app.core.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    code_for_status,
    document_validation_problems,
    public_validation_errors,
)
from app.core.request_id import current_request_id

log = structlog.get_logger("app.errors")

# A database failure's traceback is logged at most this often per cause (its type).
TRACEBACK_EVERY_SECONDS = 60.0

ExceptionHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]


class ContentTooLarge(StarletteHTTPException):
    """Raised while a body is being received. An HTTPException so FastAPI's body parsing lets
    it through instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class BodyReadTimeout(StarletteHTTPException):
    """Raised while a body is being received and the client has sent nothing for a while."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body sent nothing for {seconds:g} s")


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


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status_code, exc.code, exc.detail, headers=exc.headers, errors=exc.errors
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = public_validation_errors(exc.errors())
    return problem_response(422, "validation_error", "request validation failed", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers 400 for a JSON body that is not UTF-8; like any body that is not
        # JSON, it is a validation problem.
        errors = [{"loc": ["body"], "msg": "body is not valid UTF-8", "type": "json_invalid"}]
        return problem_response(422, "validation_error", "request validation failed", errors=errors)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        headers["Allow"] = ", ".join(allowed)
    return problem_response(
        exc.status_code, code_for_status(exc.status_code), detail, headers=headers
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
    app.add_exception_handler(DBAPIError, database_error_handler())
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
