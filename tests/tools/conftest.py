"""Fixtures for the tools: the app as production builds it (with Redis, the test app also
consumes the job stream, as a worker would), a job poller, and an exchange-rate service on
loopback that speaks the public API's dialect, so no test reaches the internet."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import make_settings

FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url, storage_dir=tmp_path / "files", email_outbox_dir=tmp_path / "outbox"
    )


def tools_app(settings: Settings) -> FastAPI:
    # With Redis the web process only hands jobs off; here it runs them too, as a worker.
    return create_app(settings.model_copy(update={"jobs_in_web_process": True}))


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    return tools_app(settings)


WaitForJob = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def wait_for_job(client: AsyncClient) -> WaitForJob:
    """Poll GET /jobs/{id} as a client would, until the job finished (fail after `seconds`)."""

    async def _wait(job_id: str, headers: dict[str, str], seconds: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await client.get(f"/api/v1/jobs/{job_id}", headers=headers)
            assert response.status_code == 200, response.text
            job = response.json()
            if job["status"] in FINISHED:
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {seconds} s: {job}")

    return _wait


# --- an exchange-rate service on loopback ---------------------------------------------------


@dataclass
class RatesService:
    """The part of the public rates API the tool uses (`GET /v1/latest?base=&symbols=`), with
    the ECB's rates of one day, and switches for a bad day."""

    url: str = ""
    rates: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "EUR": {"USD": 1.0823, "GBP": 0.8571, "JPY": 162.3},
            "USD": {"EUR": 0.92396, "GBP": 0.7919},
        }
    )
    day: str = "2026-11-20"
    fail_with: int | None = None
    answer_garbage: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)

    async def latest(self, request: Request) -> Response:
        base, symbol = request.query_params.get("base", ""), request.query_params.get("symbols", "")
        self.requests.append({"base": base, "symbols": symbol})
        if self.fail_with is not None:
            return JSONResponse({"message": "unavailable"}, self.fail_with)
        if self.answer_garbage:
            return PlainTextResponse("<html>maintenance</html>")
        if base not in self.rates or symbol not in self.rates[base]:
            return JSONResponse({"message": "not found"}, 404)
        return JSONResponse(
            {
                "amount": 1.0,
                "base": base,
                "date": self.day,
                "rates": {symbol: self.rates[base][symbol]},
            }
        )


@pytest.fixture
async def rates_service(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RatesService]:
    """The rates service on a free loopback port, and the tool pointed at it (the one setting
    the test changes is where the service lives)."""
    from app.tools import currency

    service = RatesService()
    app = Starlette(routes=[Route("/v1/latest", service.latest)])
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(10):
                while not server.started:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.01)
            service.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            monkeypatch.setattr(currency, "RATES_URL", f"{service.url}/v1/latest")
            yield service
        finally:
            server.should_exit = True
            with suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def rates_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool pointed at a loopback port where nothing listens (connection refused)."""
    from app.tools import currency

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(currency, "RATES_URL", f"http://127.0.0.1:{port}/v1/latest")
