"""Cursor pages: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.

A cursor is the sort key of the last item, base64url-encoded JSON. Opaque to clients, cheap to
seek with (`WHERE id > :last`), and stable while rows are inserted (unlike OFFSET).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 512


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int
    cursor: dict[str, Any] | None


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The key a cursor carries; anything else (not base64, not a JSON object, nested too deep
    for the JSON parser) is an `InvalidInput`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise InvalidInput("cursor is not valid", code="invalid_cursor") from exc
    if not isinstance(value, dict):
        raise InvalidInput("cursor is not valid", code="invalid_cursor")
    return value


# --- newest first: keyset pages over (created_at, uuid id), both descending --------------------


class Dated(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> uuid.UUID: ...


Row = TypeVar("Row", bound=Dated)


def newest_first(
    query: Select[Any],
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    page: PageParams,
) -> Select[Any]:
    """`query` ordered newest first, from just after the page's cursor, one row more than the
    page holds (so `next_page` knows whether another page follows). The id breaks ties between
    rows created in the same microsecond."""
    query = query.order_by(created_at.desc(), row_id.desc()).limit(page.limit + 1)
    if page.cursor is None:
        return query
    at, last_id = _position(page.cursor)
    return query.where(or_(created_at < at, and_(created_at == at, row_id < last_id)))


def next_page(rows: Sequence[Row], page: PageParams) -> tuple[Sequence[Row], str | None]:
    """The page's items and the cursor of the next page (None on the last page)."""
    items = rows[: page.limit]
    if len(rows) <= page.limit:
        return items, None
    last = items[-1]
    return items, encode_cursor({"at": last.created_at.isoformat(), "id": str(last.id)})


def _position(cursor: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
    at, last_id = cursor.get("at"), cursor.get("id")
    try:
        if not isinstance(at, str) or not isinstance(last_id, str):
            raise ValueError("cursor fields are strings")
        created_at = datetime.fromisoformat(at)
        if created_at.tzinfo is None:
            raise ValueError("cursor time is not aware")
        return created_at, uuid.UUID(last_id)
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", code="invalid_cursor") from exc
