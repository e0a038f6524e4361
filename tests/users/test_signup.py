from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select

from app.main import create_app
from app.users.models import User
from tests.conftest import PASSWORD, lifespan_of, make_settings
from tests.users.conftest import PUBLIC_KEYS, assert_problem, assert_validation_problem

URL = "/api/v1/users"


def body(**overrides):
    return {"email": "ann@example.com", "password": PASSWORD, "name": "Ann", **overrides}


async def test_sign_up_returns_201_with_exactly_the_public_fields(client):
    response = await client.post(URL, json=body(age=30))

    assert response.status_code == 201
    user = response.json()
    assert set(user) == PUBLIC_KEYS
    assert user["email"] == "ann@example.com"
    assert user["name"] == "Ann"
    assert user["age"] == 30
    assert user["is_active"] is True
    assert user["is_superuser"] is False
    assert user["balance"] == "0.00"
    assert user["currency"] == "USD"
    assert PASSWORD not in response.text
    assert "hashed" not in response.text


async def test_sign_up_without_age_leaves_it_null(client):
    response = await client.post(URL, json=body())

    assert response.status_code == 201
    assert response.json()["age"] is None


async def test_sign_up_stores_the_email_lower_case_and_the_password_hashed(client, user_row):
    response = await client.post(URL, json=body(email="Ann.Smith@Example.COM"))

    assert response.json()["email"] == "ann.smith@example.com"
    row = await user_row("ann.smith@example.com")
    assert row is not None
    assert row.id == response.json()["id"]
    assert row.hashed_password != PASSWORD
    assert PASSWORD not in row.hashed_password


async def test_sign_up_strips_whitespace_around_the_name(client):
    response = await client.post(URL, json=body(name="  Ann  "))

    assert response.status_code == 201
    assert response.json()["name"] == "Ann"


async def test_sign_up_then_login_with_the_email_in_any_case(client, login):
    await client.post(URL, json=body())

    headers = await login("ANN@example.com")
    response = await client.get("/api/v1/users/me", headers=headers)
    assert response.json()["email"] == "ann@example.com"


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@example.com"])
async def test_sign_up_with_a_taken_email_in_any_case_is_409(client, user_row, email):
    first = await client.post(URL, json=body(email="ann@example.com", name="First"))

    response = await client.post(URL, json=body(email=email, name="Second"))

    assert_problem(response, 409, "email_taken")
    row = await user_row("ann@example.com")
    assert row.id == first.json()["id"]
    assert row.name == "First"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "ann@"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a" * 310 + "@example.com"}, "email"),
        ({"password": "x" * 7}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"age": -1}, "age"),
        ({"age": 151}, "age"),
        ({"age": "old"}, "age"),
        ({"name": None}, "name"),
        ({"is_superuser": True}, "is_superuser"),
        ({"balance": "100.00"}, "balance"),
    ],
)
async def test_sign_up_with_invalid_input_is_422_and_creates_nothing(
    client, user_row, overrides, field
):
    response = await client.post(URL, json=body(**overrides))

    assert_validation_problem(response, field)
    assert await user_row("ann@example.com") is None


@pytest.mark.parametrize("missing", ["email", "password", "name"])
async def test_sign_up_without_a_required_field_is_422_and_echoes_no_input(client, missing):
    sent = body()
    del sent[missing]

    response = await client.post(URL, json=sent)

    assert_validation_problem(response, missing)
    # Pydantic's `input` for a missing field is the whole object, password included.
    assert PASSWORD not in response.text


async def test_sign_up_with_password_at_the_limits_is_accepted(client):
    short = await client.post(URL, json=body(email="a@example.com", password="x" * 8))
    long = await client.post(URL, json=body(email="b@example.com", password="x" * 128))

    assert (short.status_code, long.status_code) == (201, 201)


async def test_sign_up_with_name_and_age_at_the_limits_is_accepted(client):
    response = await client.post(URL, json=body(name="n" * 100, age=150))
    zero = await client.post(URL, json=body(email="b@example.com", name="n", age=0))

    assert response.status_code == 201
    assert response.json()["name"] == "n" * 100
    assert zero.status_code == 201
    assert zero.json()["age"] == 0


async def test_sign_up_with_a_body_that_is_not_json_is_422(client, user_row):
    response = await client.post(
        URL, content=b'{"email": "ann@example.com",', headers={"Content-Type": "application/json"}
    )

    assert_validation_problem(response)
    assert await user_row("ann@example.com") is None


async def test_sign_up_with_json_sent_as_text_plain_is_422(client, user_row):
    response = await client.post(
        URL, content=json.dumps(body()).encode(), headers={"Content-Type": "text/plain"}
    )

    assert_validation_problem(response)
    assert await user_row("ann@example.com") is None


@pytest.mark.parametrize("payload", [[], "ann", 42, None])
async def test_sign_up_with_json_that_is_not_an_object_is_422(client, payload):
    response = await client.post(URL, json=payload)

    assert_validation_problem(response)


async def test_sign_up_with_no_body_is_422(client):
    response = await client.post(URL)

    assert_validation_problem(response)


@pytest.fixture
def closed_application(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url, signup_enabled=False))


@pytest.fixture
async def closed_client(closed_application: FastAPI) -> AsyncIterator[AsyncClient]:
    async with lifespan_of(closed_application) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_sign_up_when_disabled_is_403_and_creates_nothing(closed_client, closed_application):
    response = await closed_client.post(URL, json=body())

    assert_problem(response, 403, "signup_disabled")
    async with closed_application.state.db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
