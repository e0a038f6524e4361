"""Helpers of the auth tests.

`settings` is overridden here so one test can run against an app built from other settings:
`@with_settings(argon2_time_cost=3)` parametrizes it indirectly, and every fixture built on it
(application, app, client, sign_up, login, ...) follows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select

from app.core.db import Database
from app.core.settings import Settings
from app.users.models import RefreshToken
from tests.conftest import PASSWORD, make_settings

TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/refresh"
LOGOUT_URL = "/api/v1/auth/logout"
ME_URL = "/api/v1/users/me"


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    return make_settings(database_url, **getattr(request, "param", {}))


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    """Run the test against an app built with these settings overrides."""
    label = ",".join(f"{key}={value}" for key, value in overrides.items())
    return pytest.mark.parametrize("settings", [overrides], indirect=True, ids=[label])


Tokens = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def tokens(client: AsyncClient) -> Tokens:
    """POST /auth/token; assert 200 and return the token pair."""

    async def _tokens(email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await client.post(TOKEN_URL, data={"username": email, "password": password})
        assert response.status_code == 200, response.text
        return dict(response.json())

    return _tokens


async def post_login(client: AsyncClient, email: str, password: str) -> Response:
    return await client.post(TOKEN_URL, data={"username": email, "password": password})


async def refresh(client: AsyncClient, token: str) -> Response:
    return await client.post(REFRESH_URL, json={"refresh_token": token})


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def without_request_id(response: Response) -> dict[str, Any]:
    body = dict(response.json())
    assert body.pop("request_id")
    return body


def assert_problem(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def db(app: Any, application: FastAPI) -> Database:
    """The running app's database. (`app` is asgi-lifespan's wrapper around the FastAPI object,
    which has no `.state`; `application` is the FastAPI object whose lifespan `app` runs.)"""
    database: Database = application.state.db
    return database


@pytest.fixture
def refresh_rows(db: Database) -> Callable[[], Awaitable[list[RefreshToken]]]:
    """Every row of `refresh_tokens`, read in a fresh session, oldest first."""

    async def _rows() -> list[RefreshToken]:
        async with db.sessionmaker() as session:
            query = select(RefreshToken).order_by(RefreshToken.created_at)
            return list((await session.scalars(query)).all())

    return _rows
