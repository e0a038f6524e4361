"""The `Allow` header of a 405: every method served at the request's path."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from starlette.routing import Match

_PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this path. Starlette's 405 names only the methods
    of the first route whose path matched (PUT /users/me says `Allow: GET` though PATCH is
    served too); RFC 9110 §15.5.6 asks for all of them. A route that matches only by a path
    parameter it would refuse (`DELETE /users/{user_id}` for /users/me) does not count."""
    allowed = []
    for method in _PROBED_METHODS:
        # A fresh "fastapi" dict: FastAPI's included routers write matching state into it.
        probe = {**request.scope, "method": method, "fastapi": {}}
        routed = any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes)
        if routed and _documented_and_refused(request, method) is not True:
            allowed.append(method)
    return allowed


def _documented_and_refused(request: Request, method: str) -> bool | None:
    """Whether the OpenAPI operations for this method whose template matches the path all
    refuse its path parameters; None when no documented operation matches (docs, tests)."""
    verdicts = []
    for template, path_item in request.app.openapi()["paths"].items():
        operation = path_item.get(method.lower())
        values = _template_values(template, request.url.path) if operation else None
        if values is not None:
            parameters = [p for p in operation.get("parameters", ()) if p["in"] == "path"]
            verdicts.append(
                all(_fits(p.get("schema", {}), values.get(p["name"], "")) for p in parameters)
            )
    return None if not verdicts else not any(verdicts)


def _template_values(template: str, path: str) -> dict[str, str] | None:
    names = re.findall(r"{([^}/]+)}", template)
    pattern = re.sub(r"\\{[^}/]+\\}", "([^/]+)", re.escape(template))
    match = re.fullmatch(pattern, path)
    return dict(zip(names, match.groups(), strict=True)) if match else None


def _fits(schema: Mapping[str, Any], value: str) -> bool:
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]+", value):
            return False
        number = int(value)
        return bool(schema.get("minimum", number) <= number <= schema.get("maximum", number))
    if schema.get("format") == "uuid":
        try:
            uuid.UUID(value)
        except ValueError:
            return False
    return True
