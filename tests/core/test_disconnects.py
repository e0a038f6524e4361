"""A pooled connection that dies (database restart, failover, a proxy's idle cut) costs at most
one 503 with Retry-After, never a 500, and never more than that one request.

There is no ping per checkout (DB_POOL_PRE_PING defaults to off: it costs a round trip on every
request). The current-user read retries once on a dead connection, so authenticated requests
do not even see it.
"""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PASSWORD, SignUp, require_postgres


async def kill_idle_app_connections(app: FastAPI, admin: AsyncEngine) -> int:
    """Terminates the server side of every connection the app's pool holds, as a restart does."""
    engine: AsyncEngine = app.state.db.engine
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    async with admin.connect() as conn:
        killed = await conn.scalar(
            text("SELECT count(*) FROM (SELECT pg_terminate_backend(:pid)) AS t"), {"pid": pid}
        )
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

    assert await kill_idle_app_connections(app, cleanup_engine) == 1
    me = await client.get("/api/v1/users/me", headers=headers)

    assert me.status_code == 200
    assert me.json()["email"] == user["email"]


async def test_dead_connection_under_a_transaction_is_a_503_then_recovers(
    app: FastAPI, client: AsyncClient, cleanup_engine: AsyncEngine, sign_up: SignUp
) -> None:
    require_postgres()
    user = await sign_up()
    form = {"username": user["email"], "password": PASSWORD}

    assert await kill_idle_app_connections(app, cleanup_engine) == 1
    lost = await client.post("/api/v1/auth/token", data=form)

    assert lost.status_code == 503
    assert lost.headers["content-type"] == "application/problem+json"
    assert lost.headers["retry-after"] == "1"
    assert lost.json()["code"] == "database_unavailable"
    # The pool was invalidated with the dead connection: the retry works at once.
    again = await client.post("/api/v1/auth/token", data=form)
    assert again.status_code == 200
