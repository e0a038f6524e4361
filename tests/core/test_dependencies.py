"""Pattern 2, dependency injection: one session per request, released before the response goes
out, a failed commit is never acknowledged, overrides swap one real implementation for another,
and every dependency hands out what *this* app's settings and lifespan made."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from starlette.types import Message, Receive, Scope, Send

from app.core.dependencies import get_password_hasher
from app.core.request_id import current_request_id
from app.core.security import PasswordHasher
from app.core.settings import Settings
from app.main import create_app
from app.users.models import User
from app.users.schemas import UserCreate
from app.users.service import create_user
from tests.conftest import (
    PASSWORD,
    TEST_DATABASE_URL,
    lifespan_of,
    make_settings,
    require_postgres,
)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    """An app built from `settings` with its lifespan running; shuts down even if the body fails."""
    application = await anyio.to_thread.run_sync(create_app, settings)
    error: BaseException | None = None
    async with (
        lifespan_of(application) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        try:
            yield application, client
        except BaseException as exc:
            error = exc
    if error is not None:
        raise error


async def stored_users(database_url: str, email: str) -> list[str]:
    """The hashed passwords stored for `email`, read over a connection of our own."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(User.hashed_password).where(User.email == email))
            return [str(row[0]) for row in rows]
    finally:
        await engine.dispose()


def new_user(email: str | None = None) -> dict[str, str]:
    return {
        "email": email or f"{uuid.uuid4().hex[:12]}@example.com",
        "password": PASSWORD,
        "name": "Dee Eye",
    }


# --- a failed commit is never acknowledged -------------------------------------------------


async def test_failed_commit_is_a_5xx_and_nothing_is_stored(
    client: AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_commit = AsyncSession.commit
    failures: list[str] = []

    async def failing_once(self: AsyncSession) -> None:
        # Only the sign-up's commit: the job runner's housekeeping commits in the background.
        if not failures and any(isinstance(obj, User) for obj in self.new):
            # The INSERT reaches the database inside the transaction; then COMMIT fails, as it
            # does when the server goes away or a deferred constraint fires.
            await self.flush()
            failures.append("commit")
            raise OperationalError("COMMIT", {}, ConnectionError("injected commit failure"))
        await real_commit(self)

    monkeypatch.setattr(AsyncSession, "commit", failing_once)
    body = new_user()

    response = await client.post("/api/v1/users", json=body)

    assert failures == ["commit"]
    assert response.status_code >= 500, response.text
    assert response.json()["code"] == "internal_error"
    assert "injected" not in response.text  # nothing of the SQL error leaks
    assert await stored_users(database_url, body["email"]) == []
    # The flushed INSERT was rolled back, not left holding the email (or, on SQLite, the lock).
    retry = await client.post("/api/v1/users", json=body)
    assert retry.status_code == 201, retry.text
    assert len(await stored_users(database_url, body["email"])) == 1


# --- one session per request, closed before the response is sent ---------------------------


async def test_one_session_per_request_released_before_the_response(
    app: Any, application: FastAPI
) -> None:
    """Only what the requests themselves do is counted: the embedded job runner opens sessions
    and checks connections out in the background, at moments a loaded machine moves around."""
    engine = application.state.db.engine
    held_by_requests: dict[int, str] = {}  # connection record -> request id
    request_checkouts: list[str] = []

    def on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        if (request_id := current_request_id()) is not None:
            held_by_requests[id(record)] = request_id
            request_checkouts.append(request_id)

    def on_checkin(_dbapi: Any, record: Any) -> None:
        held_by_requests.pop(id(record), None)

    event.listen(engine.sync_engine, "checkout", on_checkout)
    event.listen(engine.sync_engine, "checkin", on_checkin)
    checked_out_at_response_start: list[int] = []

    async def probe(scope: Scope, receive: Receive, send: Send) -> None:
        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                checked_out_at_response_start.append(len(held_by_requests))
            await send(message)

        await app(scope, receive, watching_send)

    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    async with application.state.db.sessionmaker() as session:
        await create_user(
            session,
            UserCreate(email=admin_email, password=PASSWORD, name="Admin"),
            application.state.password_hasher,
            is_superuser=True,
        )

    sessions: set[int] = set()

    def on_begin(session: Session, *_: Any) -> None:
        if current_request_id() is not None:  # a request's session, not the job runner's
            sessions.add(id(session))

    event.listen(Session, "after_begin", on_begin)
    try:
        async with AsyncClient(transport=ASGITransport(app=probe), base_url="http://test") as http:

            async def one(method: str, url: str, **kwargs: Any) -> Any:
                sessions.clear()
                response = await http.request(method, url, **kwargs)
                return response, len(sessions)

            body = new_user()
            signed_up, n_signup = await one("POST", "/api/v1/users", json=body)
            assert signed_up.status_code == 201
            token, n_login = await one(
                "POST",
                "/api/v1/auth/token",
                data={"username": body["email"], "password": PASSWORD},
            )
            assert token.status_code == 200
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            me, n_me = await one("GET", "/api/v1/users/me", headers=headers)
            assert me.status_code == 200
            # A read that never commits (a superuser listing users): only closing the session
            # gives its connection back.
            admin = await one(
                "POST",
                "/api/v1/auth/token",
                data={"username": admin_email, "password": PASSWORD},
            )
            admin_headers = {"Authorization": f"Bearer {admin[0].json()['access_token']}"}
            listed, n_list = await one("GET", "/api/v1/users", headers=admin_headers)
            assert listed.status_code == 200
            assert len(listed.json()["items"]) == 2
            # The current user is a snapshot read without a session; the endpoint's session
            # is the request's only one.
            patched, n_patch = await one(
                "PATCH", "/api/v1/users/me", json={"name": "Renamed"}, headers=headers
            )
            assert patched.status_code == 200
            assert patched.json()["name"] == "Renamed"
            failed, n_failed = await one(
                "POST", "/api/v1/users", json=body
            )  # duplicate: 409 after a rolled-back INSERT
            assert failed.status_code == 409
    finally:
        event.remove(Session, "after_begin", on_begin)
        event.remove(engine.sync_engine, "checkout", on_checkout)
        event.remove(engine.sync_engine, "checkin", on_checkin)

    # GET /users/me opens no session at all: the current user is read with Core
    # (app.users.service.load_user_snapshot), in autocommit, on a connection of its own.
    assert [n_signup, n_login, n_me, n_list, n_patch, n_failed] == [1, 1, 0, 1, 1, 1]
    assert checked_out_at_response_start == [0] * 7
    assert len(set(request_checkouts)) == 7  # every request used the database
    assert held_by_requests == {}


async def test_no_idle_in_transaction_connections_after_requests(
    client: AsyncClient, application: FastAPI, database_url: str
) -> None:
    require_postgres()
    body = new_user()
    assert (await client.post("/api/v1/users", json=body)).status_code == 201
    token = await client.post(
        "/api/v1/auth/token", data={"username": body["email"], "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    for _ in range(3):
        assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/users/999999", headers=headers)).status_code == 404
    assert (await client.post("/api/v1/users", json=body)).status_code == 409

    # The app is still running, its pool still holds its connections: none of them may sit in
    # an open transaction.
    engine = create_async_engine(TEST_DATABASE_URL, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT state FROM pg_stat_activity WHERE datname = :db"),
                {"db": make_url(database_url).database},
            )
            states = [row[0] for row in rows]
    finally:
        await engine.dispose()
    assert states, "the app holds no pooled connection: the check proves nothing"
    assert [s for s in states if s and s.startswith("idle in transaction")] == []
    assert application.state.db.engine.pool.checkedout() == 0


# --- overrides swap one real implementation for another --------------------------------------


async def test_override_swaps_the_password_hasher(
    client: AsyncClient, application: FastAPI, database_url: str
) -> None:
    default = new_user()
    assert (await client.post("/api/v1/users", json=default)).status_code == 201

    stronger = PasswordHasher(time_cost=2, memory_kib=4096)

    async def stronger_hasher() -> PasswordHasher:
        return stronger

    application.dependency_overrides[get_password_hasher] = stronger_hasher
    try:
        swapped = new_user()
        assert (await client.post("/api/v1/users", json=swapped)).status_code == 201
    finally:
        application.dependency_overrides.clear()

    [default_hash] = await stored_users(database_url, default["email"])
    [swapped_hash] = await stored_users(database_url, swapped["email"])
    assert default_hash.startswith("$argon2id$")
    assert "m=1024,t=1," in default_hash
    assert swapped_hash.startswith("$argon2id$")
    assert "m=4096,t=2," in swapped_hash

    # The override is gone: the next sign-up uses the app's own hasher again, and a password
    # hashed with other parameters still verifies.
    after = new_user()
    assert (await client.post("/api/v1/users", json=after)).status_code == 201
    [after_hash] = await stored_users(database_url, after["email"])
    assert "m=1024,t=1," in after_hash
    login = await client.post(
        "/api/v1/auth/token", data={"username": swapped["email"], "password": PASSWORD}
    )
    assert login.status_code == 200


# --- settings are the ones given to create_app ------------------------------------------------


async def test_each_app_uses_its_own_settings(database_url: str) -> None:
    open_settings = make_settings(database_url, signup_enabled=True, currency="EUR")
    closed_settings = make_settings(database_url, signup_enabled=False, currency="USD")
    async with (
        running(open_settings) as (open_app, open_client),
        running(closed_settings) as (closed_app, closed_client),
    ):
        assert open_app.state.settings is open_settings
        assert closed_app.state.settings is closed_settings

        opened = await open_client.post("/api/v1/users", json=new_user())
        closed = await closed_client.post("/api/v1/users", json=new_user())
        # And once more in the other order: nothing is cached between the two apps.
        opened_again = await open_client.post("/api/v1/users", json=new_user())

    assert opened.status_code == 201, opened.text
    assert opened.json()["currency"] == "EUR"
    assert opened_again.status_code == 201
    assert closed.status_code == 403
    assert closed.json()["code"] == "signup_disabled"

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(User)) == 2
    finally:
        await engine.dispose()
