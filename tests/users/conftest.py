"""Helpers of the users tests: read a user's row straight from the database, and a superuser.

`application` (the FastAPI object) is used for `state`, not `app`: the `app` fixture of
tests/conftest.py yields asgi-lifespan's state wrapper, a plain function without `.state`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.users.models import User

UserRow = Callable[[str], Awaitable[User | None]]

PUBLIC_KEYS = {
    "id",
    "email",
    "name",
    "age",
    "is_active",
    "is_superuser",
    "balance",
    "currency",
    "created_at",
    "updated_at",
}


@pytest.fixture
def user_row(app: Any, application: FastAPI) -> UserRow:
    """The `users` row with that email, read in a fresh session (None when there is none)."""

    async def _user_row(email: str) -> User | None:
        async with application.state.db.sessionmaker() as session:
            return await session.scalar(select(User).where(User.email == email))

    return _user_row


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def assert_validation_problem(response: Any, *fields: str) -> None:
    """A 422 problem whose errors carry loc/msg/type only and name each of `fields`."""
    assert_problem(response, 422, "validation_error")
    errors = response.json()["errors"]
    assert errors
    for error in errors:
        assert set(error) == {"loc", "msg", "type"}
    named = {part for error in errors for part in error["loc"]}
    for field in fields:
        assert field in named, errors
