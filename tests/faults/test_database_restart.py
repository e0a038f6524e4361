"""PostgreSQL stopped and restarted under load (issue #15, faults).

A real `python -m app serve` on a PostgreSQL of the test's own; clients read their wallets and
pay each other without pause. The database is stopped as `pg_ctl stop -m fast` (sessions ended
cleanly) or `-m immediate` (a crash: no goodbye on any connection) would, then started again.
While it is down every request is answered at once with a 503 `database_unavailable` and
`Retry-After` (never a 500, never a hang); the first success comes within 2 s of the database
accepting connections again (as `pg_isready` sees it); afterwards the money is consistent and
no payment is half-written.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from bench.private_pg import PrivatePostgres, StopMode
from tests.e2e.conftest import StartServer
from tests.faults.conftest import server_settings, wait_until_ready
from tests.faults.ledger import assert_money_consistent
from tests.faults.load import Load, Outcome, funded_people

pytestmark = pytest.mark.e2e

PEOPLE = 4
CLIENTS = 8
# Rounds of each client: served before the stop, refused during the outage, served after.
ROUNDS = 3
# The bound: from the database accepting connections to the first success.
RECOVERY_SECONDS = 2.0
# No request waits longer than this for its answer, outage or not (a hang would be the
# client's timeout, twice this).
ANSWER_SECONDS = 10.0
# Generous bounds for what only a very slow machine would approach.
STEP_SECONDS = 30.0


def refused_for_the_outage(outcome: Outcome) -> bool:
    return (
        outcome.status == 503
        and outcome.code == "database_unavailable"
        and outcome.retry_after is not None
    )


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_the_database_stopped_and_restarted_under_load(
    mode: StopMode,
    private_postgres: PrivatePostgres,
    app_database: str,
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    server = await start_server(app_database, **server_settings(tmp_path))
    async with server.client() as client:
        people = await funded_people(client, PEOPLE, balance="100.00")
    load = Load(server.base_url, people, clients=CLIENTS, timeout=2 * ANSWER_SECONDS)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(load.run)
        try:
            # Every client served: the pool holds connections, which the stop will kill.
            await load.wait_until(
                lambda: load.fewest(lambda o: o.ok) >= ROUNDS,
                STEP_SECONDS,
                "load running",
            )
            await anyio.to_thread.run_sync(private_postgres.stop, mode)
            stopped_at = time.monotonic()
            await load.wait_until(
                lambda: load.fewest(lambda o: o.status == 503, since=stopped_at) >= ROUNDS,
                STEP_SECONDS,
                "every client refused while the database is down",
            )
            launched_at = time.monotonic()
            await anyio.to_thread.run_sync(private_postgres.launch)
            await wait_until_ready(private_postgres)
            ready_at = time.monotonic()
            await load.wait_until(
                lambda: load.fewest(lambda o: o.ok, since=ready_at) >= ROUNDS,
                STEP_SECONDS,
                "every client served again",
            )
        finally:
            load.stop()

    # Refused from the stop until the restart (then, until pg_isready noticed, either).
    during_outage = [o for o in load.since(stopped_at) if o.finished_at < launched_at]
    assert during_outage
    assert all(refused_for_the_outage(o) for o in during_outage), load.summary()
    # Nothing else went wrong at any point: no 500, no other refusal, no transport error.
    unexpected = [o.describe() for o in load.outcomes if not (o.ok or refused_for_the_outage(o))]
    assert unexpected == [], load.summary()
    slowest = max(load.outcomes, key=lambda o: o.seconds)
    assert slowest.seconds < ANSWER_SECONDS, slowest.describe()

    first_success = min(o.finished_at for o in load.since(stopped_at) if o.ok)
    assert first_success - ready_at < RECOVERY_SECONDS, (
        f"first success {first_success - ready_at:.2f} s after the database was ready"
    )

    acknowledged = [o.body["id"] for o in load.outcomes if o.operation == "payment" and o.ok]
    payments = await assert_money_consistent(app_database, acknowledged)
    assert payments >= len(acknowledged) > 0
    async with server.client() as client:
        assert (await client.get("/health/ready")).status_code == 200
