"""`python -m app expose some.module`: every public function of a plain module served through
the whole production stack, in-process (the app it builds) and as a real server process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.settings import Settings
from app.expose import ExposeError
from app.main import API_PREFIX, create_app
from app.tools.cli import expose_module
from tests.conftest import PASSWORD, ROOT, lifespan_of
from tests.e2e.conftest import _LAUNCHER, Server, _read_output, _wait_until_live, free_port
from tests.e2e.conftest import server_environment as e2e_environment

MODULE = "tests.tools.sample_module"
BASE = "/api/v1/tools/sample_module"


def module_app(settings: Settings) -> FastAPI:
    """The production app plus the module's functions, as the command builds it."""
    app = create_app(settings)
    app.include_router(expose_module(MODULE).exposer.router, prefix=API_PREFIX)
    return app


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    return module_app(settings)


async def test_every_public_function_is_served(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    mean = await client.post(
        f"{BASE}/mean", json={"values": ["1", "2", "4.5"]}, headers=user_headers
    )
    assert mean.json() == {"result": "2.5"}
    slug = await client.post(
        f"{BASE}/slugify", json={"text": "Hello, World!", "separator": "_"}, headers=user_headers
    )
    assert slug.json() == {"result": "hello_world"}
    echo = await client.post(f"{BASE}/pause_and_echo", json={"text": "hi"}, headers=user_headers)
    assert echo.json() == {"result": "hi"}

    listed = (await client.get(BASE, headers=user_headers)).json()["items"]
    assert [tool["name"] for tool in listed] == ["mean", "slugify", "pause_and_echo"]
    assert listed[0]["path"] == f"{BASE}/mean"
    # The app's own tools are still there, beside the module's.
    assert (await client.get("/api/v1/tools", headers=user_headers)).status_code == 200


async def test_the_whole_stack_applies(client: AsyncClient, user_headers: dict[str, str]) -> None:
    assert (await client.post(f"{BASE}/mean", json={"values": [1]})).status_code == 401
    empty = await client.post(f"{BASE}/mean", json={"values": []}, headers=user_headers)
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_arguments")
    assert empty.headers["x-request-id"] == empty.json()["request_id"]
    nothing = await client.post(f"{BASE}/slugify", json={"text": "!!"}, headers=user_headers)
    assert (nothing.status_code, nothing.json()["code"]) == (404, "not_found")
    unknown = await client.post(f"{BASE}/mean", json={"values": [1], "x": 1}, headers=user_headers)
    assert unknown.status_code == 422
    hidden = await client.post(f"{BASE}/_helper", json={"value": 1}, headers=user_headers)
    assert hidden.status_code == 404

    document = (await client.get("/openapi.json")).json()
    assert (
        document["paths"][f"{BASE}/mean"]["post"]["summary"]
        == "The arithmetic mean of some amounts."
    )
    metrics = (await client.get("/metrics")).text
    assert f'route="{BASE}/mean"' in metrics


def test_what_cannot_be_served_is_reported() -> None:
    served = expose_module(MODULE)
    assert served.exposed == ["mean", "slugify", "pause_and_echo"]
    assert set(served.skipped) == {"untyped"}
    assert "parameter 'value': has no type hint" in served.skipped["untyped"]
    with pytest.raises(ExposeError, match="parameter 'value': has no type hint"):
        expose_module(MODULE, names=["untyped"])
    with pytest.raises(ExposeError, match="has no public function named nope"):
        expose_module(MODULE, names=["nope"])
    with pytest.raises(ExposeError, match="has no function that can be exposed"):
        expose_module("tests.tools")
    with pytest.raises(ExposeError, match="--prefix"):
        expose_module(MODULE, prefix="no-slash")
    only = expose_module(MODULE, names=["slugify"], prefix="/text")
    assert (only.exposed, only.prefix) == (["slugify"], "/text")


async def test_two_modules_in_one_process_do_not_collide(settings: Settings) -> None:
    # Each `expose` builds its own router: a second app (another test, a reload) is fine.
    # (Built in a thread: create_app checks its static files, blocking, as a server does.)
    first, again = [await anyio.to_thread.run_sync(lambda: module_app(settings)) for _ in range(2)]
    assert first is not again
    async with (
        lifespan_of(again),
        AsyncClient(transport=ASGITransport(app=again), base_url="http://test") as client,
    ):
        assert (await client.get("/health/live")).status_code == 200


# --- the real command -----------------------------------------------------------------------


@pytest.fixture
async def expose_server(tmp_path: Path) -> AsyncIterator[Server]:
    """`python -m app expose tests.tools.sample_module` on a free port, with a fresh SQLite
    database it migrates itself."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LAUNCHER,
        "expose",
        MODULE,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=ROOT,
        env=e2e_environment(
            f"sqlite+aiosqlite:///{tmp_path / 'expose.db'}",
            VAR_DIR=str(tmp_path / "var"),
            REDIS_URL="",
        ),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    server = Server(process, f"http://127.0.0.1:{port}", "")
    server.reader = asyncio.create_task(_read_output(server))
    try:
        await _wait_until_live(server)
        yield server
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGTERM)
            with anyio.move_on_after(15):
                await process.wait()
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
        server.reader.cancel()
        await asyncio.gather(server.reader, return_exceptions=True)


@pytest.mark.e2e
async def test_the_command_serves_a_module(expose_server: Server) -> None:
    async with httpx.AsyncClient(base_url=expose_server.base_url, timeout=30) as client:
        email = "cli@example.com"
        created = await client.post(
            "/api/v1/users", json={"email": email, "password": PASSWORD, "name": "CLI"}
        )
        assert created.status_code == 201, created.text
        token = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        response = await client.post(
            f"{BASE}/slugify", json={"text": "Over The Wire"}, headers=headers
        )
        assert response.json() == {"result": "over-the-wire"}
        assert (await client.post(f"{BASE}/slugify", json={"text": "x"})).status_code == 401
    assert f"POST {BASE}/mean" in expose_server.log
    assert "skipped untyped:" in expose_server.log
    assert expose_server.process.returncode is None
    os.kill(expose_server.pid, signal.SIGTERM)
    assert await expose_server.wait(20) == 0
    assert "Traceback" not in expose_server.log
