"""Faults, end to end: a real `python -m app serve` (tests/e2e's `start_server`) on a PostgreSQL
and a Redis that the test starts for itself, and may stop and start again; never the machine's
shared ones. So these tests need no TEST_DATABASE_URL: they run under `make test` as well as
`make test-services`, wherever PostgreSQL's server programs and `redis-server` are installed.
Without them they skip, saying which is missing (and fail under TEST_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy.engine import make_url

from bench.private_pg import PrivatePostgres, missing_requirement
from tests.conftest import REQUIRE_SERVICES
from tests.e2e.conftest import query_on, start_server
from tests.jobs.conftest import redis_server

# Fixtures shared with the e2e and job tests: the server process, a private redis-server.
__all__ = ["redis_server", "start_server"]

APP_DATABASE = "wallet"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL instance of the test's own (initdb into a temporary directory), running;
    removed at the end whatever the test did, even if it left it stopped."""
    reason = missing_requirement()
    if reason is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"TEST_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(f"needs a private PostgreSQL: {reason}")
    # synchronous_commit on: a commit answered is in the WAL, so it survives `-m immediate`
    # (the instance keeps fsync off: an operating system crash is not among these faults).
    instance = PrivatePostgres(synchronous_commit="on")
    try:
        instance.initdb()
        instance.start()
        yield instance
    finally:
        instance.remove()


@pytest.fixture
async def app_database(private_postgres: PrivatePostgres) -> str:
    """The URL of an empty database on the private instance (`serve` migrates it)."""
    await query_on(private_postgres.url, f'CREATE DATABASE "{APP_DATABASE}"')
    return (
        make_url(private_postgres.url)
        .set(database=APP_DATABASE)
        .render_as_string(hide_password=False)
    )


def server_settings(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The server's settings for the fault tests: test mode, so the sandbox gateway can fund
    wallets through the API; cheap Argon2; files and emails under the test's directory; and
    no Redis unless the test brings its own (never the suite's TEST_REDIS_URL)."""
    return {
        "ENVIRONMENT": "test",
        "PAYMENT_GATEWAY": "sandbox",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "SIGNUP_RATE_LIMIT": "1000/minute",
        "REDIS_URL": "",
        "STORAGE_DIR": str(tmp_path / "files"),
        "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        **overrides,
    }


async def wait_until_ready(instance: PrivatePostgres, seconds: float = 60) -> None:
    """Until `pg_isready` says the instance accepts connections (polling another process:
    there is no event to wait on)."""
    command = instance.isready_command()
    with anyio.fail_after(seconds):
        while (await anyio.run_process(command, check=False)).returncode != 0:  # noqa: ASYNC110
            await anyio.sleep(0.02)
