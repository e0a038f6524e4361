"""Every response carries `X-Request-ID`: a sane incoming id is echoed, anything else is replaced
by a generated one, and a problem body names the same id as the header."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from httpx import AsyncClient

from app.main import create_app
from tests.conftest import make_settings

GENERATED = re.compile(r"[0-9a-f]{32}")

boom = APIRouter()


@boom.get("/test-only/boom")
async def explode() -> None:
    raise RuntimeError("boom")


@pytest.fixture
def application(database_url: str) -> FastAPI:
    application = create_app(make_settings(database_url, max_json_bytes=2048))
    application.include_router(boom)  # test scaffolding, added before the lifespan runs
    return application


async def _responses(client: AsyncClient, headers: dict[str, str]) -> dict[str, object]:
    return {
        "200": await client.get("/health/live", headers=headers),
        "400": await client.post(
            "/api/v1/users",
            content=b"{}",
            headers={**headers, "Content-Type": "application/json", "Content-Length": "x"},
        ),
        "401": await client.get("/api/v1/users/me", headers=headers),
        "404": await client.get("/nowhere", headers=headers),
        "405": await client.delete("/health/live", headers=headers),
        "413": await client.post(
            "/api/v1/users",
            content=b"[" + b"1," * 2000 + b"1]",
            headers={**headers, "Content-Type": "application/json"},
        ),
        "422": await client.post("/api/v1/users", json={}, headers=headers),
        "500": await client.get("/test-only/boom", headers=headers),
    }


async def test_every_response_carries_a_generated_request_id(client: AsyncClient) -> None:
    seen = set()
    for expected, response in (await _responses(client, {})).items():
        assert str(response.status_code) == expected  # type: ignore[attr-defined]
        request_id = response.headers["x-request-id"]  # type: ignore[attr-defined]
        assert GENERATED.fullmatch(request_id), (expected, request_id)
        if expected != "200":
            assert response.json()["request_id"] == request_id  # type: ignore[attr-defined]
        seen.add(request_id)
    assert len(seen) == 8  # one fresh id per request


async def test_a_sane_incoming_id_is_echoed_on_every_status(client: AsyncClient) -> None:
    for expected, response in (
        await _responses(client, {"X-Request-ID": "lb-7f3a.9:01_Z"})
    ).items():
        assert str(response.status_code) == expected  # type: ignore[attr-defined]
        assert response.headers.get_list("x-request-id") == ["lb-7f3a.9:01_Z"]  # type: ignore[attr-defined]
        if expected != "200":
            assert response.json()["request_id"] == "lb-7f3a.9:01_Z"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param(b"a" * 129, id="too-long"),
        pytest.param(b"has space", id="space"),
        pytest.param(b"abc\r\nSet-Cookie: session=evil", id="crlf"),
        pytest.param(b"abc%0d%0aSet-Cookie:x", id="encoded-crlf"),
        pytest.param(b"abc\x00def", id="nul"),
        pytest.param("r\u00e9quete-\u2603".encode(), id="non-ascii"),
        pytest.param(b"<script>alert(1)</script>", id="markup"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_an_insane_incoming_id_is_replaced(client: AsyncClient, incoming: bytes) -> None:
    response = await client.get("/no/such/page", headers=[(b"X-Request-ID", incoming)])
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    assert GENERATED.fullmatch(request_id)
    assert response.headers.get_list("x-request-id") == [request_id]
    assert response.json()["request_id"] == request_id
    assert "set-cookie" not in response.headers


async def test_the_longest_sane_id_is_kept(client: AsyncClient) -> None:
    incoming = "a" * 128
    response = await client.get("/health/live", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
