"""The request-body limits, enforced before anything parses a body.

- Size: the limit follows the route, not the Content-Type a client chooses. Routes marked with
  `accepts_large_body` (file uploads, CSV imports) take up to MAX_UPLOAD_BYTES; every other
  route's body is capped at MAX_JSON_BYTES. A declared `Content-Length` over the limit is refused
  at once, and a body that grows past it while streaming is cut off with 413 as its bytes
  arrive (never buffered whole).
- Time: a body that sends nothing for BODY_READ_TIMEOUT seconds is answered 408, so a stalled
  client cannot hold a socket (and a half-written upload) forever.

Why not FastAPI's own `max_body_size` (tried on 0.165): a request that declares a
`Content-Length` over it gets Starlette's `text/plain` "Content Too Large" instead of a problem
and, with the limit set on the app, from outside every middleware of ours (no request id, no
CORS headers); 11 tests of body limits, uploads and request ids failed with it. It has no read
timeout either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import BodyReadTimeout, ContentTooLarge, problem_response

F = TypeVar("F", bound=Callable[..., Any])

_LARGE_BODY_ATTRIBUTE = "accepts_large_body"


def accepts_large_body(endpoint: F) -> F:
    """Mark an endpoint that streams a file upload: its body may be up to MAX_UPLOAD_BYTES."""
    setattr(endpoint, _LARGE_BODY_ATTRIBUTE, True)
    return endpoint


def large_body_paths(routers: Iterable[APIRouter], prefix: str = "") -> frozenset[str]:
    """The paths of the routes marked `accepts_large_body`, as the app serves them (`prefix` is
    what the routers are included under). Computed once, when the app is built."""
    return frozenset(
        prefix + route.path
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and getattr(route.endpoint, _LARGE_BODY_ATTRIBUTE, False)
    )


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_json_bytes: int,
        max_upload_bytes: int,
        body_read_timeout: float,
        large_body_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes
        self.body_read_timeout = body_read_timeout
        self.large_body_paths = large_body_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            await problem_response(400, "bad_request", "invalid Content-Length")(
                scope, receive, send
            )
            return
        bodiless = declared == "0" or (
            declared is None
            and "transfer-encoding" not in headers
            and scope["method"] in ("GET", "HEAD", "OPTIONS")
        )
        if bodiless:  # most of the traffic: nothing to watch
            await self.app(scope, receive, send)
            return
        large = scope["path"] in self.large_body_paths
        limit = self.max_upload_bytes if large else self.max_json_bytes
        if declared is not None and int(declared) > limit:
            detail = f"request body exceeds the limit of {limit} bytes"
            await problem_response(413, "content_too_large", detail)(scope, receive, send)
            return

        received = 0
        body_complete = False
        timeout = self.body_read_timeout

        async def receive_within_limits() -> Message:
            nonlocal received, body_complete
            if body_complete:  # now only a disconnect can come: waiting for it is not a stall
                return await receive()
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ContentTooLarge(limit)
                body_complete = not message.get("more_body", False)
            return message

        await self.app(scope, receive_within_limits, send)
