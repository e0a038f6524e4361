"""Helpers of the import tests: an app that runs its jobs (also when they go through Redis),
CSV uploads built by hand, and a client-side wait for the job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from app.core.settings import Settings
from app.imports import service
from app.main import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import fresh_database, start_server
from tests.files.conftest import multipart

__all__ = ["fresh_database", "start_server"]  # the real-server fixtures, for the memory test

IMPORTS = "/api/v1/imports/users"
UPLOAD_LIMIT = 32 * 1024 * 1024
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture(autouse=True)
def batches_of_1000(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports run in batches of 10,000 rows; here of 1,000, so that files of a few thousand
    rows cross batch boundaries (duplicates across batches, `abort` after a batch is written).
    The memory test's server process keeps the real size."""
    monkeypatch.setattr(service, "BATCH_SIZE", 1000)


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def settings(database_url: str, storage_dir: Path) -> Settings:
    return make_settings(database_url, storage_dir=storage_dir, max_upload_bytes=UPLOAD_LIMIT)


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    # With Redis the web process only hands jobs off; this one runs them too, as a worker.
    return create_app(settings.model_copy(update={"jobs_in_web_process": True}))


PostCsv = Callable[..., Awaitable[Response]]
RunImport = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def post_csv(client: AsyncClient, superuser_headers: dict[str, str]) -> PostCsv:
    async def _post(
        content: bytes, on_error: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        body = multipart(filename="users.csv", content_type="text/csv")
        params = {"on_error": on_error} if on_error else {}
        return await client.post(
            IMPORTS,
            params=params,
            content=body.body(content),
            headers=body.headers(None, **(superuser_headers if headers is None else headers)),
        )

    return _post


@pytest.fixture
def run_import(
    client: AsyncClient, post_csv: PostCsv, superuser_headers: dict[str, str]
) -> RunImport:
    """Upload the CSV, expect 202, and poll GET /jobs/{id} until the job finished."""

    async def _run(
        content: bytes, on_error: str | None = None, seconds: float = 60
    ) -> dict[str, Any]:
        response = await post_csv(content, on_error)
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        assert job["kind"] == "imports.users"
        deadline = time.monotonic() + seconds
        while job["status"] not in FINISHED:
            assert time.monotonic() < deadline, f"import not finished in {seconds} s: {job}"
            await asyncio.sleep(0.05)
            polled = await client.get(f"/api/v1/jobs/{job['id']}", headers=superuser_headers)
            assert polled.status_code == 200, polled.text
            job = polled.json()
        return job

    return _run
