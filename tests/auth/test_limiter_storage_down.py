"""Sign-in while the rate limiter's Redis is down (issue #15, item 2): a throwaway
redis-server of this test's own (never the shared one), stopped and started inside the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from httpx import AsyncClient

from app.core.settings import Settings
from tests.auth.conftest import post_login
from tests.auth.test_rate_limit import assert_rate_limited, fail
from tests.conftest import PASSWORD, REQUIRE_SERVICES, make_settings
from tests.jobs.processes import RedisServer, free_port, redis_server_binary

STRICT = 5  # make_settings' default for login_failures_per_email_and_client


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    if redis_server_binary() is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is not installed but TEST_REQUIRE_SERVICES=1")
        pytest.skip("needs the redis-server binary (apt-get install redis-server)")
    server = RedisServer(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def settings(database_url: str, redis_server: RedisServer) -> Settings:
    return make_settings(database_url, redis_url=redis_server.url)


def storage_events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "app.ratelimit"]


async def test_sign_in_works_and_is_still_limited_while_redis_is_down(
    redis_server: RedisServer,
    client: AsyncClient,
    sign_up: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: with Redis stopped, POST /auth/token was a 500 (the limiter's ConnectionError,
    unhandled). After: 200 for the right password, 401 then 429 for wrong ones (counted in
    process meanwhile), and one warning for the whole outage, not one per request (7 requests
    here); once Redis is back the limiter says so once and uses it again."""
    user = await sign_up()
    assert (await post_login(client, user["email"], PASSWORD)).status_code == 200
    await redis_server.stop()

    assert (await post_login(client, user["email"], PASSWORD)).status_code == 200
    await fail(client, user["email"], STRICT)
    assert_rate_limited(await post_login(client, user["email"], PASSWORD))

    [warning] = storage_events(caplog)
    assert "rate_limit_storage_unavailable" in warning

    await redis_server.start()  # same port
    other = await sign_up()
    with anyio.fail_after(30):
        while len(storage_events(caplog)) < 2:
            assert (await post_login(client, other["email"], PASSWORD)).status_code == 200
            await anyio.sleep(0.2)
    assert "rate_limit_storage_recovered" in storage_events(caplog)[1]
    assert len(storage_events(caplog)) == 2
