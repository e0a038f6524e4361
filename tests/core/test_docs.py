"""Interactive docs that work with no internet access: every asset the pages reference is served
by the service itself, and the schema they load is ours."""

from __future__ import annotations

import mimetypes
import re

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.conftest import lifespan_of

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


EXPECTED_PATHS = {
    "/api/v1/auth/token",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/users",
    "/api/v1/users/me",
    "/api/v1/users/{user_id}",
    "/health/live",
    "/health/ready",
    "/metrics",
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_references_only_local_assets(client: AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower()
    assets = ASSET.findall(html)
    assert any(url.endswith(".js") for url in assets), assets
    for url in assets:
        # Same origin: an absolute path, never a scheme or a protocol-relative "//host".
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    assert not re.search(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert "/openapi.json" in html


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_references_is_served(client: AsyncClient, page: str) -> None:
    html = (await client.get(page)).text
    for url in ASSET.findall(html):
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
        content_type = asset.headers["content-type"]
        if url.endswith(".js"):
            assert "javascript" in content_type, (url, content_type)
        elif url.endswith(".css"):
            assert content_type.startswith("text/css"), (url, content_type)
        elif url.endswith(".png"):
            assert content_type == "image/png", (url, content_type)


async def test_swagger_oauth2_redirect_page_is_local(client: AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "cdn" not in response.text.lower()
    assert not re.search(r"""src\s*=\s*["']\s*(?:https?:)?//""", response.text, re.IGNORECASE)


async def test_openapi_schema_is_valid_json_with_our_paths(client: AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "fastapi-production-patterns"
    assert set(schema["paths"]) >= EXPECTED_PATHS
    # "Authorize" in the docs posts to the real token endpoint.
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/api/v1/auth/token"
    # Errors are documented as problems.
    responses = schema["paths"]["/api/v1/users/{user_id}"]["get"]["responses"]
    assert "application/problem+json" in responses["404"]["content"]


# Two blocking calls on the event loop that blockbuster found here (fixed in the lifespan,
# which now does both in a worker thread): pydantic's EmailStr calls importlib.metadata.version()
# (stats sys.path) when the OpenAPI schema is first built, and Starlette's FileResponse loads
# the MIME tables (mimetypes.init() reads /etc/mime.types) on the first static asset.


async def test_first_openapi_request_does_not_block_the_loop(client: AsyncClient) -> None:
    # The `client` fixture's app is fresh: this is its first /openapi.json.
    assert (await client.get("/openapi.json")).status_code == 200


async def test_first_static_asset_does_not_block_the_loop(
    application: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a fresh process (another test may already have loaded the tables in this one).
    monkeypatch.setattr(mimetypes, "_db", None)
    async with lifespan_of(application) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/static-offline-docs/swagger-ui.css")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/css")
