"""SIGTERM under load (issue #15, faults): many clients read and pay without pause against a
real `python -m app serve` on a PostgreSQL of the test's own; then SIGTERM.

Every request the server accepted (it reached the app: the app logs each one, with the
request id the client sent) is answered in full with a success, none is cut mid-response; a
request the server never accepted fails on the wire (the listening socket is closed, an idle
keep-alive connection is closed), which a client may retry elsewhere. The process exits 0 well
within its grace period, leaves no connection in PostgreSQL and abandoned none (it closed them,
rather than leaving that to its exit), and the money is consistent.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import make_url

from bench.private_pg import PrivatePostgres
from tests.e2e.conftest import GRACEFUL_SHUTDOWN_SECONDS, Server, StartServer, query_on
from tests.e2e.test_server_lifecycle import assert_clean_log
from tests.faults.conftest import server_settings
from tests.faults.ledger import assert_money_consistent
from tests.faults.load import Load, funded_people

pytestmark = pytest.mark.e2e

PEOPLE = 8
CLIENTS = 32
# The graceful period plus the lifespan's shutdown, on a slow machine.
EXIT_DEADLINE_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + 10
STEP_SECONDS = 30.0


def logged(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.lines if line.startswith("{")]


def shutdown_seconds(server: Server) -> float:
    """From uvicorn's "Shutting down" to its last line, by the server's own clock."""
    moments = {
        entry["event"]: datetime.fromisoformat(entry["timestamp"]) for entry in logged(server)
    }
    finished = next(event for event in moments if event.startswith("Finished server process"))
    return (moments[finished] - moments["Shutting down"]).total_seconds()


def accepted_request_ids(server: Server) -> set[str]:
    """The ids of the requests that reached the app: its access log has one line for each."""
    return {entry["request_id"] for entry in logged(server) if entry["event"] == "request"}


async def connections_to(instance: PrivatePostgres, database: str) -> int:
    [(count,)] = await query_on(
        instance.url, "SELECT count(*) FROM pg_stat_activity WHERE datname = :db", db=database
    )
    assert isinstance(count, int)
    return count


async def test_sigterm_under_load_finishes_every_accepted_request(
    private_postgres: PrivatePostgres,
    app_database: str,
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    database = make_url(app_database).database
    assert database is not None
    server = await start_server(app_database, **server_settings(tmp_path))
    async with server.client() as client:
        people = await funded_people(client, PEOPLE, balance="100.00")
    load = Load(server.base_url, people, clients=CLIENTS, stop_on_transport_error=True)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(load.run)
        try:
            await load.wait_until(
                lambda: load.fewest(lambda o: o.ok) > 0, STEP_SECONDS, "every client served"
            )
            assert await connections_to(private_postgres, database) > 0
            server.send_signal(signal.SIGTERM)
            signalled_at = time.monotonic()
            code = await server.wait(EXIT_DEADLINE_SECONDS)
        finally:
            load.stop()

    # Some requests were being served when the signal came, and they finished.
    assert any(o.ok and o.started_at < signalled_at < o.finished_at for o in load.outcomes)
    accepted = accepted_request_ids(server)
    answered = {o.request_id for o in load.outcomes if o.status is not None}
    assert answered <= accepted  # (the log is complete)
    cut = [o.describe() for o in load.outcomes if o.status is None and o.request_id in accepted]
    assert cut == [], f"accepted, then cut on the wire: {cut}"
    failed = [o.describe() for o in load.outcomes if o.status is not None and not o.ok]
    assert failed == [], load.summary()

    assert code == 0, f"exit code {code}\n{server.log}"
    # Drained and shut down within the grace period, nothing cancelled for running out of it.
    assert shutdown_seconds(server) < GRACEFUL_SHUTDOWN_SECONDS
    assert "timeout graceful shutdown exceeded" not in server.log
    assert_clean_log(server)

    # Backends leave pg_stat_activity a moment after their client disconnects.
    with anyio.move_on_after(5):
        while await connections_to(private_postgres, database):  # noqa: ASYNC110
            await anyio.sleep(0.05)
    assert await connections_to(private_postgres, database) == 0
    [(abandoned,)] = await query_on(
        private_postgres.url,
        "SELECT sessions_abandoned FROM pg_stat_database WHERE datname = :db",
        db=database,
    )
    assert abandoned == 0

    acknowledged = [o.body["id"] for o in load.outcomes if o.operation == "payment" and o.ok]
    assert await assert_money_consistent(app_database, acknowledged) >= len(acknowledged) > 0
