"""50 API tests (5 tests x 10 cases), imported by seed/test_api.py and ours/test_api.py: the
same tests, two sets of fixtures. Each test starts from an empty table."""

from __future__ import annotations

import httpx
import pytest

CASES = [(f"note {i}", "body " * i) for i in range(10)]


@pytest.mark.parametrize(("title", "body"), CASES)
async def test_create(client: httpx.AsyncClient, title: str, body: str) -> None:
    response = await client.post("/notes", json={"title": title, "body": body})
    assert response.status_code == 201
    assert response.json()["title"] == title


@pytest.mark.parametrize(("title", "body"), CASES)
async def test_read_back(client: httpx.AsyncClient, title: str, body: str) -> None:
    created = (await client.post("/notes", json={"title": title, "body": body})).json()
    response = await client.get(f"/notes/{created['id']}")
    assert response.json() == created


@pytest.mark.parametrize(("title", "body"), CASES)
async def test_list_starts_empty(client: httpx.AsyncClient, title: str, body: str) -> None:
    assert (await client.get("/notes")).json() == []
    await client.post("/notes", json={"title": title, "body": body})
    assert len((await client.get("/notes")).json()) == 1


@pytest.mark.parametrize(("title", "body"), CASES)
async def test_delete(client: httpx.AsyncClient, title: str, body: str) -> None:
    created = (await client.post("/notes", json={"title": title, "body": body})).json()
    assert (await client.delete(f"/notes/{created['id']}")).status_code == 204
    assert (await client.get(f"/notes/{created['id']}")).status_code == 404


@pytest.mark.parametrize(("title", "body"), CASES)
async def test_missing_title(client: httpx.AsyncClient, title: str, body: str) -> None:
    response = await client.post("/notes", json={"body": body})
    assert response.status_code == 422
