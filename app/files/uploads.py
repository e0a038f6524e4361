"""Reading a multipart upload as a stream: `request.stream()` fed to python-multipart's push
parser, one file field's bytes handed on as they arrive.

FastAPI's `UploadFile` would have the whole body parsed (and spooled to a temporary file) before
the endpoint runs, with no size limit; here nothing is buffered beyond one network chunk, and
the caller decides where the bytes go (storage, hashing as they pass).

A body whose length does not match its `Content-Length`, a body that is not well-formed
multipart, or one without the expected field is a 4xx problem, raised from the iterator itself
so that whoever consumes it (storage) drops what it wrote.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.core.errors import AppError, BadRequest, InvalidInput

# More parts than this in one upload is not a browser form: refused before it costs anything.
MAX_PARTS = 16
MAX_FILENAME_LENGTH = 255
DEFAULT_FILENAME = "upload"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# The body is read by hand (streamed), so FastAPI is told what it looks like for the docs.
MULTIPART_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


class LengthRequired(AppError):
    status_code = 411
    code = "length_required"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


Event = tuple[str, Any]


class MultipartStream:
    def __init__(self, request: Request) -> None:
        self.request = request
        content_type, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise UnsupportedMediaType(
                "send the file as multipart/form-data (with a boundary)",
            )
        declared = request.headers.get("content-length")
        if declared is None:
            # Without it an oversized upload could only be refused after the limit's worth of
            # bytes; with it, at once (BodyLimitMiddleware), and a truncated body is told
            # apart from a complete one.
            raise LengthRequired("uploads must send a Content-Length")
        self.declared = int(declared)  # digits only: the middleware refused anything else
        self.received = 0
        self._events: list[Event] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                },
            )
        except FormParserError as exc:
            raise BadRequest(str(exc), code="malformed_multipart") from exc
        self._stream = self._parse()

    # Parser callbacks: they only record what happened; the async side acts on it.
    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        self._events.append(("headers", self._headers))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(("data", data[start:end]))

    def _part_end(self) -> None:
        self._events.append(("end", None))

    async def _parse(self) -> AsyncGenerator[Event, None]:
        try:
            async for chunk in self.request.stream():
                self.received += len(chunk)
                if self.received > self.declared:
                    raise BadRequest(
                        "the body is longer than its Content-Length", code="length_mismatch"
                    )
                try:
                    self._parser.write(chunk)
                except FormParserError as exc:
                    raise BadRequest(
                        f"malformed multipart body: {exc}", code="malformed_multipart"
                    ) from exc
                events, self._events = self._events, []
                for event in events:
                    yield event
        except ClientDisconnect as exc:
            raise BadRequest("the upload was interrupted", code="upload_incomplete") from exc
        if self.received != self.declared:
            raise BadRequest("the body is shorter than its Content-Length", code="length_mismatch")
        if self._parser.state != MultipartState.END:
            raise BadRequest(
                "malformed multipart body: it ends before its closing boundary",
                code="malformed_multipart",
            )

    async def file(self, field: str) -> UploadedFile:
        """Read up to the start of form field `field` and return it, its bytes still to come."""
        parts = 0
        async for kind, value in self._stream:
            if kind != "headers":
                continue  # the data of a part we do not want
            parts += 1
            if parts > MAX_PARTS:
                raise BadRequest(f"more than {MAX_PARTS} parts", code="too_many_parts")
            disposition, options = parse_options_header(value.get(b"content-disposition"))
            if disposition == b"form-data" and options.get(b"name") == field.encode():
                return UploadedFile(
                    filename=_filename(options.get(b"filename")),
                    content_type=_content_type(value.get(b"content-type")),
                    chunks=self._data(parts),
                )
        await self._stream.aclose()
        raise InvalidInput(
            f"the form has no `{field}` field",
            code="file_missing",
            errors=[{"loc": ["body", field], "msg": "Field required", "type": "missing"}],
        )

    async def _data(self, parts: int) -> AsyncGenerator[bytes, None]:
        try:
            async for kind, value in self._stream:
                if kind == "data":
                    yield value
                elif kind == "end":
                    break
            # The rest of the body (normally just the closing boundary) is read, not kept, so
            # a truncated or malformed tail still fails the upload.
            async for kind, _ in self._stream:
                if kind == "headers":
                    parts += 1
                    if parts > MAX_PARTS:
                        raise BadRequest(f"more than {MAX_PARTS} parts", code="too_many_parts")
        finally:
            await self._stream.aclose()


def _filename(raw: bytes | None) -> str:
    if not raw:
        return DEFAULT_FILENAME
    # Browsers send the name as UTF-8; keep only its last path segment, printable.
    name = raw.decode("utf-8", errors="replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip()
    return name[:MAX_FILENAME_LENGTH] or DEFAULT_FILENAME


def _content_type(raw: bytes | None) -> str:
    value = (raw or b"").decode("latin-1").split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.match(value) else DEFAULT_CONTENT_TYPE
