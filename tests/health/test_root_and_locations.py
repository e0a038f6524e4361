"""A newcomer's first request, `GET /`, points at everything else; every 202 says where its job
is (`Location: /api/v1/jobs/{id}`), and that address answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpx import AsyncClient, Response

from app.core.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url, email_backend="console", storage_dir=tmp_path / "files", redis_url=None
    )


async def test_root_links_to_docs_health_and_the_api(client: AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    links = response.json()["links"]
    assert links["docs"] == "/docs"
    assert links["health_ready"] == "/health/ready"
    assert links["api"] == "/api/v1"
    for path in links.values():
        assert (await client.get(path)).status_code == 200, path


async def assert_points_at_its_job(
    client: AsyncClient, response: Response, headers: dict[str, str]
) -> None:
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location == f"/api/v1/jobs/{response.json()['id']}"
    assert (await client.get(location, headers=headers)).status_code == 200


async def test_every_202_carries_the_location_of_its_job(
    client: AsyncClient, user_headers: dict[str, str], superuser_headers: dict[str, str]
) -> None:
    export = await client.post("/api/v1/exports/transactions", headers=user_headers)
    await assert_points_at_its_job(client, export, user_headers)

    today = datetime.now(UTC).date()
    period = {"start": (today - timedelta(days=30)).isoformat(), "end": today.isoformat()}
    tool = await client.post("/api/v1/tools/account_statement", json=period, headers=user_headers)
    await assert_points_at_its_job(client, tool, user_headers)

    email = {"to": "someone@example.com", "subject": "hello", "body": "hi"}
    notification = await client.post("/api/v1/notifications", json=email, headers=superuser_headers)
    await assert_points_at_its_job(client, notification, superuser_headers)

    csv = "email,name\nann@example.com,Ann\n"
    imported = await client.post(
        "/api/v1/imports/users",
        files={"file": ("users.csv", csv, "text/csv")},
        headers=superuser_headers,
    )
    await assert_points_at_its_job(client, imported, superuser_headers)

    cancelled = await client.post(f"{export.headers['Location']}/cancel", headers=user_headers)
    if cancelled.status_code != 409:  # the export may already have finished
        await assert_points_at_its_job(client, cancelled, user_headers)
