"""Password checks cost the same for every failure, and never stall the event loop.

Both tests compare times measured in the same run (a ratio, a fraction of one hash), never a
time against a fixed number of milliseconds: they hold on a slow or busy machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import anyio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from tests.auth.conftest import assert_problem, post_login, with_settings
from tests.conftest import PASSWORD

TRIES = 15


async def _elapsed(client, email: str, password: str) -> float:
    started = time.perf_counter()
    response = await post_login(client, email, password)
    elapsed = time.perf_counter() - started
    assert_problem(response, 401, "invalid_credentials")
    return elapsed


# A hash costly enough (~45 ms) to dwarf the rest of a request: skipping it would show.
@with_settings(
    argon2_time_cost=2,
    argon2_memory_kib=32_768,
    login_failures_per_email="100/minute",
    login_failures_per_email_and_client="100/minute",
)
async def test_unknown_email_costs_as_much_as_a_wrong_password(client, sign_up):
    user = await sign_up()
    # Warm-up: the dummy hash is made on first use, connections are opened.
    await _elapsed(client, "nobody@example.com", PASSWORD)
    await _elapsed(client, user["email"], "not the password")

    unknown, wrong = [], []
    for _ in range(TRIES):  # interleaved, so drift in machine load hits both alike
        unknown.append(await _elapsed(client, "nobody@example.com", PASSWORD))
        wrong.append(await _elapsed(client, user["email"], "not the password"))

    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2.0, (ratio, unknown, wrong)


async def _production_hash_seconds() -> float:
    hasher = PasswordHash((Argon2Hasher(time_cost=3, memory_cost=65_536),))
    hashed = await anyio.to_thread.run_sync(hasher.hash, PASSWORD)
    started = time.perf_counter()
    await anyio.to_thread.run_sync(hasher.verify, PASSWORD, hashed)
    return time.perf_counter() - started


@with_settings(argon2_time_cost=3, argon2_memory_kib=65_536)
async def test_logins_with_production_argon2_do_not_stall_the_event_loop(client, sign_up):
    users = [await sign_up() for _ in range(5)]
    one_hash = await _production_hash_seconds()
    # Open the pooled connections (database, Redis) the concurrent logins will use: opening
    # one is start-up work, not the steady state measured here.
    warm = await asyncio.gather(*(client.get("/health/ready") for _ in range(len(users) + 1)))
    assert {response.status_code for response in warm} == {200}
    lags: list[float] = []
    health: list[int] = []
    done = asyncio.Event()

    async def watch_loop() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)
            health.append((await client.get("/health/live")).status_code)

    async def log_in_everyone() -> list[int]:
        try:
            responses = await asyncio.gather(
                *(post_login(client, user["email"], PASSWORD) for user in users)
            )
        finally:
            done.set()
        return [response.status_code for response in responses]

    statuses, _ = await asyncio.gather(log_in_everyone(), watch_loop())

    assert statuses == [200] * len(users)
    assert len(lags) >= 5, lags  # the watcher kept running during the logins
    assert set(health) == {200}
    # Had one hash run on the loop, some wait would have lasted about a whole hash.
    assert max(lags) < one_hash / 2, (max(lags), one_hash, lags)
