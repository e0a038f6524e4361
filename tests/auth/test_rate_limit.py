"""Failed-login throttling, per email and per client address (in memory, or in Redis when
TEST_REDIS_URL is set: make_settings passes the worker's Redis to the app)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from httpx import ASGITransport, AsyncClient

from app.main import create_app
from tests.auth.conftest import assert_problem, post_login, with_settings
from tests.conftest import PASSWORD, TEST_REDIS_URL, lifespan_of

PER_EMAIL = 5  # make_settings: login_failures_per_email_and_client="5/minute", one client
WRONG = "not the password"


def assert_rate_limited(response) -> None:
    assert_problem(response, 429, "rate_limited")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60
    assert "access_token" not in response.text


async def fail(client, email: str, times: int) -> None:
    for _ in range(times):
        assert_problem(await post_login(client, email, WRONG), 401, "invalid_credentials")


async def test_too_many_failures_for_one_email_lock_even_the_correct_password(client, sign_up):
    user = await sign_up()
    await fail(client, user["email"], PER_EMAIL)

    assert_rate_limited(await post_login(client, user["email"], PASSWORD))
    assert_rate_limited(await post_login(client, user["email"], WRONG))


async def test_failures_below_the_limit_do_not_lock(client, sign_up):
    user = await sign_up()
    await fail(client, user["email"], PER_EMAIL - 1)

    assert (await post_login(client, user["email"], PASSWORD)).status_code == 200


async def test_email_lock_ignores_the_emails_case(client, sign_up):
    user = await sign_up(email="Ann@Example.com")
    for spelling in ("ann@example.com", "ANN@EXAMPLE.COM", "Ann@Example.com", "aNN@example.com"):
        await fail(client, spelling, 1)
    await fail(client, "ann@EXAMPLE.com", 1)

    assert_rate_limited(await post_login(client, user["email"], PASSWORD))


async def test_unknown_email_is_throttled_like_a_known_one(client):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    await fail(client, email, PER_EMAIL)

    assert_rate_limited(await post_login(client, email, WRONG))


async def test_a_locked_email_leaves_other_emails_alone(client, sign_up):
    locked, other = await sign_up(), await sign_up()
    await fail(client, locked["email"], PER_EMAIL)
    assert_rate_limited(await post_login(client, locked["email"], PASSWORD))

    assert (await post_login(client, other["email"], PASSWORD)).status_code == 200
    assert_problem(await post_login(client, other["email"], WRONG), 401, "invalid_credentials")


async def test_successful_logins_are_not_counted(client, sign_up):
    user = await sign_up()

    for _ in range(PER_EMAIL * 2):
        assert (await post_login(client, user["email"], PASSWORD)).status_code == 200


@with_settings(login_failures_per_client="3/minute")
async def test_too_many_failures_from_one_client_across_emails_lock_that_client(client, sign_up):
    user = await sign_up()
    for _ in range(3):
        await fail(client, f"{uuid.uuid4().hex[:8]}@example.com", 1)

    assert_rate_limited(await post_login(client, user["email"], PASSWORD))


async def test_a_burst_of_parallel_guesses_cannot_outrun_the_email_limit(client, sign_up):
    user = await sign_up()

    responses = await asyncio.gather(
        *(post_login(client, user["email"], WRONG) for _ in range(4 * PER_EMAIL))
    )

    statuses = [response.status_code for response in responses]
    assert statuses.count(401) == PER_EMAIL, statuses
    assert statuses.count(429) == 3 * PER_EMAIL, statuses


async def test_a_correct_password_resets_the_emails_failure_count(client, sign_up):
    user = await sign_up()
    await fail(client, user["email"], PER_EMAIL - 1)
    assert (await post_login(client, user["email"], PASSWORD)).status_code == 200

    await fail(client, user["email"], PER_EMAIL - 1)

    assert (await post_login(client, user["email"], PASSWORD)).status_code == 200


@pytest.fixture
def second_application(settings):
    """Another app from the same settings: a second worker process, as far as state goes."""
    return create_app(settings)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the count is shared through Redis (TEST_REDIS_URL)")
async def test_workers_sharing_redis_share_the_email_limit(client, sign_up, second_application):
    user = await sign_up()
    await fail(client, user["email"], PER_EMAIL)

    async with (
        lifespan_of(second_application) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as other,
    ):
        assert_rate_limited(await post_login(other, user["email"], PASSWORD))
