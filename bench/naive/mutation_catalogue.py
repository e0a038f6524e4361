"""A fixed catalogue of realistic backend bugs, each a mutation of the dict a backend function
returns for one account. Injected one at a time by bench.scenarios.mutation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

Payload = dict[str, Any]


def correct_account() -> Payload:
    """What the backend returns when it is right."""
    return {
        "id": 42,
        "email": "ann@example.com",
        "name": "Ann Example",
        "nickname": "ann",
        "balance": "12.30",
        "currency": "EUR",
        "status": "active",
        "created_at": datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
        "tags": ["vip", "beta"],
        "is_verified": True,
    }


def _rename(old: str, new: str) -> Callable[[Payload], None]:
    def mutate(p: Payload) -> None:
        p[new] = p.pop(old)

    return mutate


def _drop(key: str) -> Callable[[Payload], None]:
    def mutate(p: Payload) -> None:
        del p[key]

    return mutate


def _set(key: str, value: Any) -> Callable[[Payload], None]:
    def mutate(p: Payload) -> None:
        p[key] = copy.deepcopy(value)

    return mutate


def _add(key: str, value: Any) -> Callable[[Payload], None]:
    return _set(key, value)


def _wrap(p: Payload) -> None:
    inner = dict(p)
    p.clear()
    p["data"] = inner


# (id, category, description, mutation)
BUGS: list[tuple[str, str, str, Callable[[Payload], None]]] = [
    (
        "rename-email",
        "field renamed",
        "email renamed email_address in a refactor",
        _rename("email", "email_address"),
    ),
    (
        "rename-camel",
        "field renamed",
        "created_at returned as createdAt",
        _rename("created_at", "createdAt"),
    ),
    ("rename-balance", "field renamed", "balance renamed amount", _rename("balance", "amount")),
    ("missing-name", "field missing", "name left out of the dict", _drop("name")),
    ("missing-tags", "field missing", "tags left out of the dict", _drop("tags")),
    (
        "missing-nickname",
        "field missing",
        "optional nickname left out (defaults to null)",
        _drop("nickname"),
    ),
    ("missing-status", "field missing", "status left out", _drop("status")),
    ("id-as-string", "wrong type", "id as the string '42'", _set("id", "42")),
    ("id-as-float", "wrong type", "id as the float 42.0", _set("id", 42.0)),
    (
        "verified-as-string",
        "wrong type",
        "is_verified as the string 'true'",
        _set("is_verified", "true"),
    ),
    ("verified-as-int", "wrong type", "is_verified as 1", _set("is_verified", 1)),
    ("tags-as-csv", "wrong type", "tags as one comma-joined string", _set("tags", "vip,beta")),
    ("status-as-int", "wrong type", "status as its database code 1", _set("status", 1)),
    ("id-null", "null not allowed", "id null (object not yet flushed)", _set("id", None)),
    ("name-null", "null not allowed", "name null", _set("name", None)),
    ("email-null", "null not allowed", "email null", _set("email", None)),
    ("tags-null", "null not allowed", "tags null instead of []", _set("tags", None)),
    (
        "leak-password-hash",
        "extra field leaks a secret",
        "hashed_password in the dict",
        _add("hashed_password", "$argon2id$v=19$m=65536$abc"),
    ),
    (
        "leak-internal-notes",
        "extra field leaks a secret",
        "internal support notes in the dict",
        _add("internal_notes", "customer threatened to sue"),
    ),
    (
        "leak-nested-owner",
        "extra field leaks a secret",
        "the whole owner row, token included",
        _add("owner", {"id": 1, "api_token": "sk_live_123"}),
    ),
    (
        "leak-ip",
        "extra field leaks a secret",
        "last login IP in the dict",
        _add("last_login_ip", "203.0.113.7"),
    ),
    ("status-uppercase", "wrong enum value", "status 'ACTIVE'", _set("status", "ACTIVE")),
    (
        "status-unknown",
        "wrong enum value",
        "status 'deleted', not in the enum",
        _set("status", "deleted"),
    ),
    ("currency-lowercase", "wrong enum value", "currency 'eur'", _set("currency", "eur")),
    (
        "currency-unknown",
        "wrong enum value",
        "currency 'GBP', not supported",
        _set("currency", "GBP"),
    ),
    (
        "date-locale",
        "wrong date format",
        "created_at as '07/12/2026 10:00'",
        _set("created_at", "07/12/2026 10:00"),
    ),
    (
        "date-epoch",
        "wrong date format",
        "created_at as a Unix timestamp",
        _set("created_at", 1796637600),
    ),
    (
        "date-naive",
        "wrong date format",
        "created_at without its time zone",
        _set("created_at", datetime(2026, 12, 7, 10, 0)),
    ),
    (
        "date-offset",
        "wrong date format",
        "created_at in local time +02:00",
        _set("created_at", datetime(2026, 12, 7, 12, 0, tzinfo=timezone(timedelta(hours=2)))),
    ),
    (
        "date-only",
        "wrong date format",
        "created_at as a date '2026-12-07'",
        _set("created_at", "2026-12-07"),
    ),
    ("decimal-float", "wrong decimal format", "balance as the float 12.3", _set("balance", 12.3)),
    (
        "decimal-float-error",
        "wrong decimal format",
        "balance as 0.1 + 0.2",
        _set("balance", 0.1 + 0.2),
    ),
    ("decimal-comma", "wrong decimal format", "balance as '12,30'", _set("balance", "12,30")),
    ("decimal-cents", "wrong decimal format", "balance in minor units 1230", _set("balance", 1230)),
    (
        "email-invalid",
        "wrong value",
        "email 'ann(at)example.com'",
        _set("email", "ann(at)example.com"),
    ),
    (
        "wrong-balance",
        "wrong value",
        "another account's balance (valid type)",
        _set("balance", "99.99"),
    ),
    ("id-off-by-one", "wrong value", "id off by one", _set("id", 43)),
    ("tags-empty", "wrong value", "tags [] when the account has tags", _set("tags", [])),
    ("name-empty", "wrong value", "name '' (empty string)", _set("name", "")),
    ("wrapped", "wrong shape", "object wrapped in {'data': ...}", _wrap),
]
