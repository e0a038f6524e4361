"""Every error is an RFC 9457 problem with a stable `code` and the request id; nothing a client
sent is echoed back, and a 500 reveals nothing (failure modes L1-L3, G6, J4)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select

from app.core.settings import Settings
from app.main import create_app
from app.users.models import User
from tests.conftest import lifespan_of, make_settings

ORIGIN = "https://app.example"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}
LEAKED_SECRET = "S3cret-do-not-echo"

# Test scaffolding: a route that fails the way a real bug fails (an exception whose text holds
# something secret), added to the app under test before its lifespan starts.
boom = APIRouter()


@boom.get("/test-only/boom")
async def explode() -> None:
    raise RuntimeError("db password=xyz at /srv/app/secret.py")


def _with_boom(settings: Settings) -> FastAPI:
    application = create_app(settings)
    application.include_router(boom)
    return application


@pytest.fixture
def application(database_url: str) -> FastAPI:
    return _with_boom(make_settings(database_url, cors_origins=ORIGIN))


@pytest.fixture
def production_application(database_url: str) -> FastAPI:
    settings = make_settings(
        database_url,
        environment="production",
        secret_key=secrets.token_urlsafe(36),  # 48 bytes
        argon2_time_cost=2,
        argon2_memory_kib=19_456,
        payment_gateway="http",
        payment_gateway_url="https://gateway.invalid/v1",
        cors_origins=ORIGIN,
    )
    return _with_boom(settings)


@asynccontextmanager
async def running(application: FastAPI) -> AsyncIterator[AsyncClient]:
    async with lifespan_of(application) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return dict(body)


async def count_users(application: FastAPI) -> int:
    # `application`, not the `app` fixture: that one is asgi-lifespan's state wrapper.
    async with application.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_unknown_route_is_a_404_problem(client: AsyncClient) -> None:
    response = await client.get("/no/such/route")
    body = assert_problem(response, 404, "not_found")
    assert set(body) == PROBLEM_KEYS
    assert body["title"] == "Not Found"


async def test_unknown_route_under_the_api_prefix_is_a_404_problem(client: AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_is_a_405_problem_with_allow(client: AsyncClient) -> None:
    response = await client.delete("/health/live")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"

    response = await client.put("/api/v1/users/me", json={})
    assert_problem(response, 405, "method_not_allowed")
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    # Every method served at this path, not just the first matching route's (RFC 9110).
    assert {"GET", "PATCH"} <= allowed
    assert "PUT" not in allowed


async def test_validation_error_lists_loc_msg_type_only(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users",
        json={"email": "not-an-email", "password": "short", "name": "", "age": 400},
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
        assert isinstance(error["loc"], list)
        assert error["loc"][0] == "body"
    locs = {tuple(error["loc"]) for error in body["errors"]}
    assert {("body", "email"), ("body", "password"), ("body", "name"), ("body", "age")} <= locs
    # The rejected values are not echoed either.
    assert "not-an-email" not in response.text


async def test_password_sent_with_a_missing_email_is_not_echoed(client: AsyncClient) -> None:
    response = await client.post("/api/v1/users", json={"password": LEAKED_SECRET, "name": "Ann"})
    body = assert_problem(response, 422, "validation_error")
    assert [error["loc"] for error in body["errors"]] == [["body", "email"]]
    assert body["errors"][0]["type"] == "missing"
    assert LEAKED_SECRET not in response.text


async def test_unknown_field_is_a_422(client: AsyncClient, application: FastAPI) -> None:
    response = await client.post(
        "/api/v1/users",
        json={"email": "ann@example.com", "password": "long enough", "name": "Ann", "x": 1},
    )
    body = assert_problem(response, 422, "validation_error")
    assert ["body", "x"] in [error["loc"] for error in body["errors"]]
    assert await count_users(application) == 0


async def test_invalid_json_body_is_a_422(client: AsyncClient, application: FastAPI) -> None:
    response = await client.post(
        "/api/v1/users",
        content=b'{"email": "ann@example.com", "password": "' + LEAKED_SECRET.encode() + b'", ',
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "validation_error")
    assert [error["type"] for error in body["errors"]] == ["json_invalid"]
    assert LEAKED_SECRET not in response.text
    assert await count_users(application) == 0


async def test_json_sent_as_text_plain_is_a_422(client: AsyncClient, application: FastAPI) -> None:
    valid = b'{"email": "ann@example.com", "password": "' + LEAKED_SECRET.encode() + b'", '
    valid += b'"name": "Ann"}'
    response = await client.post(
        "/api/v1/users", content=valid, headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 422, "validation_error")
    # FastAPI's default would echo the raw body in `input` (G6 + L2).
    assert LEAKED_SECRET not in response.text
    assert await count_users(application) == 0

    # The same bytes as application/json are accepted: only the content type was wrong.
    response = await client.post(
        "/api/v1/users", content=valid, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert await count_users(application) == 1


def _assert_generic_500(response: Response) -> None:
    body = assert_problem(response, 500, "internal_error")
    assert set(body) == PROBLEM_KEYS
    assert body["detail"] == "internal server error"
    text = response.text
    for leaked in ("Traceback", "RuntimeError", "password", "xyz", ".py", "/srv/", "File "):
        assert leaked not in text, leaked
    # ...and it is the browser-readable 500, not a CORS failure (J4).
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_unexpected_exception_is_a_generic_500(
    application: FastAPI, client: AsyncClient
) -> None:
    assert application.debug is False
    response = await client.get("/test-only/boom", headers={"Origin": ORIGIN})
    _assert_generic_500(response)


async def test_unexpected_exception_keeps_a_sane_request_id(client: AsyncClient) -> None:
    response = await client.get(
        "/test-only/boom", headers={"Origin": ORIGIN, "X-Request-ID": "trace-500"}
    )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-500"
    assert response.json()["request_id"] == "trace-500"


async def test_the_app_keeps_serving_after_a_500(client: AsyncClient) -> None:
    assert (await client.get("/test-only/boom")).status_code == 500
    assert (await client.get("/health/live")).status_code == 200


async def test_production_settings_give_the_same_generic_500(
    production_application: FastAPI,
) -> None:
    assert production_application.debug is False
    assert production_application.state.settings.environment == "production"
    async with running(production_application) as http:
        response = await http.get("/test-only/boom", headers={"Origin": ORIGIN})
    _assert_generic_500(response)


async def test_unknown_route_is_a_404_problem_in_production_too(
    production_application: FastAPI,
) -> None:
    async with running(production_application) as http:
        assert_problem(await http.get("/wp-admin.php"), 404, "not_found")


@pytest.mark.parametrize("host", ["a/?x=", "evil.example/api/v1/health", "a#b"])
async def test_a_crafted_host_header_does_not_bypass_auth(client: AsyncClient, host: str) -> None:
    # K8: auth is a dependency on the route, not a check of request.url, so a Host header that
    # poisons the URL changes nothing.
    response = await client.get("/api/v1/users/me", headers={"Host": host})
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_options_on_users_me_does_not_advertise_delete(client: AsyncClient) -> None:
    # DELETE /users/{user_id} matches the path /users/me only by a user_id it refuses ("me"
    # is no integer): that method is not served there.
    response = await client.options("/api/v1/users/me")
    assert_problem(response, 405, "method_not_allowed")
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert allowed == {"GET", "PATCH"}

    response = await client.options("/api/v1/users/7")
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert allowed == {"GET", "PATCH", "DELETE"}


async def test_a_json_body_that_is_not_utf8_is_a_422_validation_problem(
    client: AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/users",
        content=b'{"email": "\xff\xfe@example.com", "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [
        {"loc": ["body"], "msg": "body is not valid UTF-8", "type": "json_invalid"}
    ]


async def test_every_422_is_documented_as_a_problem(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    documented = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            response = operation["responses"].get("422")
            if response is None:
                continue
            documented += 1
            assert set(response["content"]) == {"application/problem+json"}, (method, path)
            schema = response["content"]["application/problem+json"]["schema"]
            assert {"status", "code", "detail", "errors"} <= set(schema["properties"])
    assert documented > 10
    assert "HTTPValidationError" not in spec["components"]["schemas"]
