"""CORS: an explicit allowlist with credentials; other origins get no CORS headers; preflights
are answered before any authentication (failure modes J1-J3)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import ValidationError

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import lifespan_of, make_settings

ORIGIN = "https://app.example"
EVIL = "https://evil.example"


@pytest.fixture
def application(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url, cors_origins=ORIGIN))


def _csv(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


async def test_simple_request_from_the_allowed_origin(client: AsyncClient) -> None:
    response = await client.get("/health/live", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "origin" in _csv(response.headers["vary"])
    # A browser script may read these.
    exposed = _csv(response.headers["access-control-expose-headers"])
    assert {"x-request-id", "retry-after"} <= exposed


async def test_error_responses_carry_cors_headers_too(client: AsyncClient) -> None:
    # A 401 without CORS headers reaches the script as an opaque network error.
    response = await client.get("/api/v1/users/me", headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    "origin",
    [
        EVIL,
        "https://app.example.evil.example",
        "http://app.example",  # wrong scheme
        "https://app.example:8443",  # wrong port
        "null",
    ],
)
async def test_other_origins_get_no_allow_origin(client: AsyncClient, origin: str) -> None:
    response = await client.get("/health/live", headers={"Origin": origin})
    # CORS is not authorization (J5): the request is served, the browser just may not read it.
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert origin not in str(response.headers)


async def test_preflight_for_a_protected_route_needs_no_token(client: AsyncClient) -> None:
    response = await client.options(
        "/api/v1/users/me",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "PATCH" in {m.upper() for m in _csv(response.headers["access-control-allow-methods"])}
    assert {"authorization", "content-type"} <= _csv(
        response.headers["access-control-allow-headers"]
    )
    assert "origin" in _csv(response.headers["vary"])
    assert int(response.headers["access-control-max-age"]) > 0
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("DELETE", "/api/v1/users/42", "authorization"),
        ("POST", "/api/v1/users", "content-type,idempotency-key,x-request-id"),
        ("GET", "/api/v1/users", "authorization"),
    ],
)
async def test_preflight_allows_the_methods_and_headers_the_api_uses(
    client: AsyncClient, method: str, path: str, headers: str
) -> None:
    response = await client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_preflight_from_another_origin_is_refused(client: AsyncClient) -> None:
    response = await client.options(
        "/api/v1/users/me",
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 400
    # Without Access-Control-Allow-Origin the browser refuses the actual request (Starlette
    # still sends its static allow-credentials header, which alone grants nothing).
    assert "access-control-allow-origin" not in response.headers
    assert EVIL not in str(response.headers)


async def test_preflight_for_an_unlisted_header_is_refused(client: AsyncClient) -> None:
    response = await client.options(
        "/api/v1/users/me",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "x-not-allowed",
        },
    )
    assert response.status_code == 400


@pytest.fixture
def no_cors_application(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url))


async def test_without_cors_origins_no_origin_is_allowed(no_cors_application: FastAPI) -> None:
    from httpx import ASGITransport

    async with lifespan_of(no_cors_application) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/health/live", headers={"Origin": ORIGIN})
            assert response.status_code == 200
            assert "access-control-allow-origin" not in response.headers
            assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("origins", ["*", "https://app.example,*", " * "])
def test_a_wildcard_origin_is_refused_at_construction(origins: str) -> None:
    with pytest.raises(ValidationError, match=r"CORS_ORIGINS may not contain '\*'"):
        Settings(_env_file=None, environment="test", cors_origins=origins)


def test_a_wildcard_origin_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "*")
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings(_env_file=None, environment="test")


def test_an_origin_with_a_trailing_slash_still_matches() -> None:
    settings = Settings(_env_file=None, environment="test", cors_origins="https://app.example/")
    assert settings.cors_origins == [ORIGIN]
