"""The request-body limit, enforced before anything parses a body: a declared `Content-Length`
over the limit is refused at once, and a body that grows past it while streaming is cut off
with 413 as its bytes arrive (never buffered whole)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import ContentTooLarge, problem_response

# Bodies of these types may be as large as MAX_UPLOAD_BYTES; everything else is capped at
# MAX_JSON_BYTES.
_UPLOAD_CONTENT_TYPES = ("multipart/form-data", "application/octet-stream", "text/csv")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "").lower()
        upload = content_type.startswith(_UPLOAD_CONTENT_TYPES)
        limit = self.max_upload_bytes if upload else self.max_json_bytes

        declared = headers.get("content-length")
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            await problem_response(400, "bad_request", "invalid Content-Length")(
                scope, receive, send
            )
            return
        if declared is not None and int(declared) > limit:
            detail = f"request body exceeds the limit of {limit} bytes"
            await problem_response(413, "content_too_large", detail)(scope, receive, send)
            return

        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ContentTooLarge(limit)
            return message

        await self.app(scope, receive_within_limit, send)
