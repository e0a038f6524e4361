"""Password hashing cannot be flooded without signing in (issue #15, item 9): sign-up is
limited per client, `current_password` checks per user, and a request that would queue behind
too many hashes is refused at once with a 503 and Retry-After."""

from __future__ import annotations

import asyncio

import pytest
from httpx import ASGITransport, AsyncClient

from tests.conftest import PASSWORD
from tests.users.conftest import assert_problem

USERS = "/api/v1/users"
ME = f"{USERS}/me"


def body(number: int) -> dict[str, str]:
    return {"email": f"flood-{number}@example.com", "password": PASSWORD, "name": "Flood"}


def with_settings(**overrides: object) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [overrides], indirect=True)


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str):
    from tests.conftest import make_settings

    return make_settings(database_url, **getattr(request, "param", {}))


@with_settings(signup_rate_limit="3/minute")
async def test_sign_up_is_limited_per_client(app) -> None:
    """Before: no limit (60 concurrent sign-ups from one client were all hashed, and delayed a
    real sign-in from 0.13 s to 5.1 s). After: the 4th sign-up in a minute from one client is
    a 429 with Retry-After; another client is not affected."""
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("203.0.113.9", 1)), base_url="http://test"
    ) as flooder:
        for number in range(3):
            assert (await flooder.post(USERS, json=body(number))).status_code == 201
        refused = await flooder.post(USERS, json=body(3))
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("198.51.100.1", 1)), base_url="http://test"
    ) as someone_else:
        assert (await someone_else.post(USERS, json=body(4))).status_code == 201


@with_settings(password_checks_per_user="3/minute")
async def test_current_password_guesses_are_limited_per_user(client, sign_up, login) -> None:
    """Before: unlimited wrong `current_password` guesses (each a 403). After: 3 a minute,
    then 429 even for the right one; other users are not affected."""
    user, other = await sign_up(), await sign_up()
    headers = await login(user["email"])
    for _ in range(3):
        guess = {"password": "new password 1", "current_password": "a wrong guess"}
        response = await client.patch(ME, json=guess, headers=headers)
        assert_problem(response, 403, "current_password_invalid")

    right = {"password": "new password 1", "current_password": PASSWORD}
    assert_problem(await client.patch(ME, json=right, headers=headers), 429, "rate_limited")
    other_headers = await login(other["email"])
    assert (await client.patch(ME, json=right, headers=other_headers)).status_code == 200


@with_settings(
    signup_rate_limit="1000/minute",
    password_hash_queue_limit=2,
    argon2_time_cost=2,
    argon2_memory_kib=16_384,
)
async def test_a_flood_of_sign_ups_is_refused_at_once_not_queued(client) -> None:
    """40 concurrent sign-ups against 2 hashing threads and a queue bound of 2. Before: all
    40 queued and were hashed one after another (201 each, the last after every other hash).
    After: those beyond the bound are answered 503 `hashing_busy` with Retry-After at once."""
    responses = await asyncio.gather(*(client.post(USERS, json=body(n)) for n in range(40)))

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.count(201) >= 4, statuses  # the threads and the queue were used
    assert statuses.count(503) >= 1, statuses
    for response in responses:
        if response.status_code == 503:
            assert_problem(response, 503, "hashing_busy")
            assert int(response.headers["retry-after"]) >= 1
