"""A pooled connection that dies (database restart, failover, a proxy's idle cut) costs at most
one 503 with Retry-After, never a 500, and never more than that one request.

There is no ping per checkout (DB_POOL_PRE_PING defaults to off: it costs a round trip on every
request). The current-user read retries once on a dead connection, so authenticated requests
do not even see it.
"""

from __future__ import annotations

import asyncio

import anyio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PASSWORD, SignUp, pool_of, require_postgres


async def still_running(admin: AsyncEngine, pids: list[int]) -> int:
    async with admin.connect() as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[]))"
        return int(await conn.scalar(text(query), {"pids": pids}) or 0)


async def kill_idle_app_connections(app: FastAPI, admin: AsyncEngine) -> int:
    """Terminates the server side of every idle connection the app's pool holds, as a restart
    does. All of them: earlier requests may have left several, and the pool hands out the
    oldest first, so killing only one would make the outcome depend on what ran before."""
    engine: AsyncEngine = app.state.db.engine
    idle = pool_of(engine).checkedin()
    # Checked out together, they are the idle ones (a new one is opened only when none is).
    held = [await engine.connect() for _ in range(idle)]
    try:
        pids = [await conn.scalar(text("SELECT pg_backend_pid()")) for conn in held]
    finally:
        for conn in held:
            await conn.close()
    async with admin.connect() as conn:
        killed = await conn.scalar(
            text(
                "SELECT count(*) FROM unnest(CAST(:pids AS int[])) AS pid "
                "WHERE pg_terminate_backend(pid)"
            ),
            {"pids": pids},
        )
    # pg_terminate_backend only signals: wait until those backends are gone (one transaction
    # per look, since pg_stat_activity is a snapshot taken once per transaction).
    with anyio.fail_after(30):
        while await still_running(admin, pids):  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return int(killed or 0)


async def test_authenticated_request_survives_a_dead_pooled_connection(
    app: FastAPI, client: AsyncClient, cleanup_engine: AsyncEngine, sign_up: SignUp
) -> None:
    require_postgres()
    user = await sign_up()
    token = await client.post(
        "/api/v1/auth/token", data={"username": user["email"], "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    assert await kill_idle_app_connections(app, cleanup_engine) >= 1
    me = await client.get("/api/v1/users/me", headers=headers)

    assert me.status_code == 200
    assert me.json()["email"] == user["email"]


async def test_dead_connection_under_a_transaction_is_a_503_then_recovers(
    app: FastAPI, client: AsyncClient, cleanup_engine: AsyncEngine, sign_up: SignUp
) -> None:
    require_postgres()
    user = await sign_up()
    form = {"username": user["email"], "password": PASSWORD}
    # Several pooled connections, as after earlier tests (the case that used to fail).
    token = (await client.post("/api/v1/auth/token", data=form)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    reads = await asyncio.gather(
        *(client.get("/api/v1/users/me", headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in reads} == {200}

    assert await kill_idle_app_connections(app, cleanup_engine) >= 2
    lost = await client.post("/api/v1/auth/token", data=form)

    assert lost.status_code == 503
    assert lost.headers["content-type"] == "application/problem+json"
    assert lost.headers["retry-after"] == "1"
    assert lost.json()["code"] == "database_unavailable"
    # The pool was invalidated with the dead connection: the retry works at once.
    again = await client.post("/api/v1/auth/token", data=form)
    assert again.status_code == 200
