"""Errors: services raise `AppError` kinds, each a status and a stable `code`; every error is
rendered as an RFC 9457 problem (`Problem`, `application/problem+json`, see error_handlers.py);
and `problems(...)` documents them: a route names the statuses and codes it can answer with.

Nothing here knows HTTP frameworks: a service may raise these without importing FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

PROBLEM_MEDIA_TYPE = "application/problem+json"


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


# Python 3.13 renamed some phrases (413 "Request Entity Too Large" -> "Content Too Large", 422
# "Unprocessable Entity" -> "Unprocessable Content"); a `code` must not change with the Python
# version, nor differ between a 413 refused on Content-Length and one refused while streaming.
_STABLE_CODES = {
    413: "content_too_large",
    416: "range_not_satisfiable",
    422: "unprocessable_content",
}


def code_for_status(status: int) -> str:
    if status in _STABLE_CODES:
        return _STABLE_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


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
    429: ("rate_limited",),
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
        named.setdefault(status, []).extend(API_WIDE_CODES.get(status, (code_for_status(status),)))
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
    the validation problem (`application/problem+json`). Rewritten in the generated schema, and
    every problem response documented without a schema (routes built by hand) gets `Problem`."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "application/json" in responses.get("422", {}).get("content", {}):
                responses["422"] = problems(422)[422]
            for response in responses.values():
                problem = response.get("content", {}).get(PROBLEM_MEDIA_TYPE)
                if problem is not None and "schema" not in problem:
                    problem["schema"] = _PROBLEM_SCHEMA
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
