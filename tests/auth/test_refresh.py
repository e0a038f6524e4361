"""POST /auth/refresh and /auth/logout: rotation, reuse detection, expiry, storage, bad bodies."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.users.models import RefreshToken
from tests.auth.conftest import (
    LOGOUT_URL,
    ME_URL,
    REFRESH_URL,
    assert_problem,
    bearer,
    refresh,
    with_settings,
)


@pytest.fixture
async def pair(sign_up, tokens):
    """A signed-up user's first token pair (one refresh-token family)."""
    user = await sign_up()
    return await tokens(user["email"])


async def test_refresh_returns_a_new_working_pair(client, pair, settings):
    response = await refresh(client, pair["refresh_token"])

    assert response.status_code == 200, response.text
    new = response.json()
    assert new["token_type"] == "bearer"
    assert new["expires_in"] == settings.access_token_ttl_seconds
    assert new["refresh_token"] != pair["refresh_token"]
    assert new["access_token"] != pair["access_token"]
    assert response.headers["cache-control"] == "no-store"
    assert (await client.get(ME_URL, headers=bearer(new["access_token"]))).status_code == 200
    assert (await refresh(client, new["refresh_token"])).status_code == 200


async def test_refresh_token_is_spent_after_one_use(client, pair, refresh_rows):
    assert (await refresh(client, pair["refresh_token"])).status_code == 200

    again = await refresh(client, pair["refresh_token"])

    assert_problem(again, 401, "token_reused")
    rows = await refresh_rows()
    assert len(rows) == 2
    assert len({row.family_id for row in rows}) == 1


async def test_reusing_a_spent_token_revokes_the_newest_of_its_family(client, pair):
    newest = (await refresh(client, pair["refresh_token"])).json()["refresh_token"]

    assert (await refresh(client, pair["refresh_token"])).status_code == 401

    assert_problem(await refresh(client, newest), 401, "token_reused")


async def test_reuse_leaves_other_families_of_the_same_user_alone(client, sign_up, tokens):
    user = await sign_up()
    first = await tokens(user["email"])
    second = await tokens(user["email"])
    assert (await refresh(client, first["refresh_token"])).status_code == 200

    assert (await refresh(client, first["refresh_token"])).status_code == 401

    assert (await refresh(client, second["refresh_token"])).status_code == 200


@pytest.mark.parametrize("concurrent", [2, 8])
async def test_concurrent_refreshes_of_one_token_succeed_exactly_once(client, pair, concurrent):
    responses = await asyncio.gather(
        *(refresh(client, pair["refresh_token"]) for _ in range(concurrent))
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * (concurrent - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 401:
            assert_problem(response, 401, "token_reused")


async def test_expired_refresh_token_is_401(client, pair, db):
    async with db.sessionmaker() as session:
        await session.execute(
            update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

    assert_problem(await refresh(client, pair["refresh_token"]), 401, "invalid_token")


@with_settings(refresh_token_ttl_seconds=120)
async def test_refresh_token_lifetime_follows_the_setting(pair, refresh_rows):
    (row,) = await refresh_rows()

    lifetime = row.expires_at - row.created_at

    assert timedelta(seconds=119) <= lifetime <= timedelta(seconds=121)


@with_settings(refresh_token_ttl_seconds=1)
async def test_refresh_token_past_its_ttl_is_401(client, pair):
    await asyncio.sleep(1.1)

    assert_problem(await refresh(client, pair["refresh_token"]), 401, "invalid_token")


async def test_refresh_tokens_are_stored_only_as_a_hash(client, pair, refresh_rows):
    second = (await refresh(client, pair["refresh_token"])).json()["refresh_token"]

    rows = await refresh_rows()

    assert len(rows) == 2
    raw = {pair["refresh_token"], second}
    for row in rows:
        columns = RefreshToken.__table__.c
        stored = " ".join(str(getattr(row, column.key)) for column in columns)
        assert not any(token in stored for token in raw)
    digests = {hashlib.sha256(token.encode()).hexdigest() for token in raw}
    assert {row.token_hash for row in rows} == digests


async def test_refresh_for_a_deactivated_user_is_401(client, sign_up, tokens, superuser_headers):
    user = await sign_up()
    pair = await tokens(user["email"])
    patched = await client.patch(
        f"/api/v1/users/{user['id']}", json={"is_active": False}, headers=superuser_headers
    )
    assert patched.status_code == 200

    assert_problem(await refresh(client, pair["refresh_token"]), 401, "invalid_token")


async def test_unknown_refresh_token_is_401(client):
    assert_problem(await refresh(client, "no-such-token"), 401, "invalid_token")


async def test_logout_ends_the_token_and_its_family(client, pair):
    newest = (await refresh(client, pair["refresh_token"])).json()["refresh_token"]

    response = await client.post(LOGOUT_URL, json={"refresh_token": newest})

    assert response.status_code == 204
    assert response.content == b""
    assert (await refresh(client, newest)).status_code == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 401


async def test_logout_with_a_spent_token_still_ends_the_live_one(client, pair):
    newest = (await refresh(client, pair["refresh_token"])).json()["refresh_token"]

    response = await client.post(LOGOUT_URL, json={"refresh_token": pair["refresh_token"]})

    assert response.status_code == 204
    assert (await refresh(client, newest)).status_code == 401


async def test_logout_stamps_every_row_of_the_family_revoked(client, pair, refresh_rows):
    await refresh(client, pair["refresh_token"])

    await client.post(LOGOUT_URL, json={"refresh_token": pair["refresh_token"]})

    rows = await refresh_rows()
    assert len(rows) == 2
    assert all(row.revoked_at is not None for row in rows)


async def test_logout_with_an_unknown_token_is_401(client):
    response = await client.post(LOGOUT_URL, json={"refresh_token": "no-such-token"})

    assert_problem(response, 401, "invalid_token")


@pytest.mark.parametrize("url", [REFRESH_URL, LOGOUT_URL])
async def test_unknown_field_in_body_is_422(client, pair, url):
    response = await client.post(url, json={"refresh_token": pair["refresh_token"], "extra": 1})

    assert_problem(response, 422, "validation_error")
    assert pair["refresh_token"] not in response.text
    # Nothing happened: the token still refreshes.
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


@pytest.mark.parametrize("url", [REFRESH_URL, LOGOUT_URL])
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"refresh_token": ', "application/json"),
        (b'["a list"]', "application/json"),
        (b"", "application/json"),
        (b'{"refresh_token": "x"}', "text/plain"),
        (b"refresh_token=x", "application/x-www-form-urlencoded"),
    ],
    ids=["garbage", "truncated", "list", "empty", "text_plain", "form"],
)
async def test_non_json_body_is_422(client, url, content, content_type):
    response = await client.post(url, content=content, headers={"Content-Type": content_type})

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("url", [REFRESH_URL, LOGOUT_URL])
@pytest.mark.parametrize(
    "value", ["", "x" * 257, 12345, None], ids=["empty", "long", "int", "null"]
)
async def test_bad_refresh_token_value_is_422(client, url, value):
    response = await client.post(url, json={"refresh_token": value})

    assert_problem(response, 422, "validation_error")
    if isinstance(value, str) and value:
        assert value not in response.text
