"""A tool's exceptions as HTTP problems, and what cannot be exposed.

ValueError and TypeError are a 422, LookupError a 404, PermissionError a 403, `errors={Exc:
status}` adds more; anything else is a 500 that says only `internal_error`. The most specific
class in an exception's MRO wins."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from app.core.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    problem_content,
    public_validation_errors,
)

MAX_DETAIL_LENGTH = 500

DEFAULT_ERRORS: Mapping[type[BaseException], int] = {
    ValueError: 422,
    TypeError: 422,
    LookupError: 404,
    PermissionError: 403,
}
# Codes for built-in exceptions, whose class names say nothing to an API client.
_GENERIC_CODES = {403: "forbidden", 404: "not_found", 422: "invalid_arguments"}

ErrorSpec = int | tuple[int, str]
# Exception class -> (status, code); a code of None is derived from the class.
ErrorMap = dict[type[BaseException], tuple[int, str | None]]


class ExposeError(TypeError):
    """A function that cannot be exposed as it stands. The message names the function and,
    where there is one, the parameter."""


class ToolError(AppError):
    """A function's own exception, rendered as the problem its exception map asks for."""

    def __init__(self, status_code: int, code: str, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, code=code, **kwargs)
        self.status_code = status_code


def error_map(qualname: str, errors: Mapping[type[BaseException], ErrorSpec] | None) -> ErrorMap:
    """The default map with `errors` over it; ExposeError for a key or status that is wrong."""
    found: ErrorMap = {cls: (code, None) for cls, code in DEFAULT_ERRORS.items()}
    for cls, spec in (errors or {}).items():
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ExposeError(f"{qualname}: errors keys must be exception classes, got {cls!r}")
        status_code, code = (spec, None) if isinstance(spec, int) else spec
        if not 400 <= status_code <= 599:
            raise ExposeError(f"{qualname}: errors[{cls.__name__}] must be a 4xx or 5xx status")
        found[cls] = (status_code, code)
    return found


def problem_for(errors: ErrorMap, exc: BaseException) -> AppError | None:
    """The problem an exception of the function maps to; None: unexpected (a 500)."""
    if isinstance(exc, AppError):
        return exc
    for cls in type(exc).__mro__:
        if cls in errors:
            status_code, code = errors[cls]
            break
    else:
        return None
    code = code or code_for_class(type(exc), status_code)
    if isinstance(exc, ValidationError):
        # Its message repeats the input; the sanitised list says what was wrong.
        return ToolError(
            status_code,
            code,
            f"{exc.title} is invalid",
            errors=public_validation_errors(exc.errors()),
        )
    return ToolError(status_code, code, _detail(exc, status_code))


def code_for_class(cls: type[BaseException], status_code: int) -> str:
    """A built-in exception's class name means nothing to a client: it gets the status's
    generic code. The function's own exceptions are named for what they mean."""
    if cls.__module__ == "builtins":
        return _GENERIC_CODES.get(status_code, "error")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()


def _detail(exc: BaseException, status_code: int) -> str:
    # KeyError("x") prints as "'x'": the argument itself is the message.
    text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    text = text.strip() or _GENERIC_CODES.get(status_code, "error").replace("_", " ")
    return text if len(text) <= MAX_DETAIL_LENGTH else text[: MAX_DETAIL_LENGTH - 1] + "…"


def problem_example(description: str, status_code: int, code: str, detail: str) -> Any:
    """An OpenAPI response: the API's `Problem` schema with one example."""
    example = {
        "type": "about:blank",
        "status": status_code,
        "code": code,
        "detail": detail,
        "request_id": "0f3c9a6e5b2d4c1e8a7f6b5c4d3e2f1a",
    }
    content = problem_content()
    content[PROBLEM_MEDIA_TYPE]["example"] = example
    return {"description": description, "content": content}


def document_errors(
    responses: dict[int | str, Any], errors: ErrorMap, raises: Mapping[str, str]
) -> None:
    """Add to an operation's `responses` the statuses the function's exceptions map to, each
    naming the exceptions (and, from the docstring's `Raises:`, when they are raised)."""
    causes: dict[int, list[str]] = {}
    for cls, (status_code, code) in errors.items():
        shown = code or code_for_class(cls, status_code)
        documented = raises.get(cls.__name__)
        causes.setdefault(status_code, []).append(
            f"`{cls.__name__}` (`{shown}`)" + (f": {documented}" if documented else "")
        )
        if status_code not in responses:
            detail = documented or f"the function raised {cls.__name__}"
            responses[status_code] = problem_example("", status_code, shown, detail)
    for status_code, listed in causes.items():
        base = responses[status_code]["description"]
        raised = "the function raised " + "; ".join(sorted(listed))
        responses[status_code]["description"] = f"{base}; {raised}" if base else raised
