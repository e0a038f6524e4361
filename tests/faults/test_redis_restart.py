"""Redis stopped and restarted under real processes (issue #15, faults): `python -m app serve`
and a `python -m app worker`, on a PostgreSQL and a Redis of the test's own.

While Redis is down, sign-in and payments keep working (the rate limiter counts in memory, a
payment's receipt job is written in the payment's transaction and waits for its hand-off), and
readiness says Redis is down. Once Redis is back (restarted empty, as a Redis without
persistence comes back) the waiting hand-offs are made, the worker, which outlived the outage,
consumes them, and every receipt is delivered; sign-in and payments go on as before.
tests/jobs/test_redis_outage.py covers the same outage inside one process (the app consuming
its own queue), with hand-offs timed after a restart.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import StartServer, query_on
from tests.faults.conftest import server_settings
from tests.faults.ledger import assert_money_consistent
from tests.jobs.processes import RedisServer, worker
from tests.notifications.conftest import Person, new_person

pytestmark = pytest.mark.e2e

API = "/api/v1"
RECEIPT = "notifications.payment_receipt"
PAYMENTS_WHILE_DOWN = 3
DELIVERY_SECONDS = 30.0


async def sign_in(client: httpx.AsyncClient, person: Person) -> dict[str, str]:
    token = await client.post(
        f"{API}/auth/token", data={"username": person.email, "password": PASSWORD}
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def pay(client: httpx.AsyncClient, headers: dict[str, str], payee: Person) -> str:
    body = {"payee_id": payee.id, "amount": "1.00"}
    paid = await client.post(f"{API}/payments", json=body, headers=headers)
    assert paid.status_code == 201, paid.text
    transaction_id: str = paid.json()["id"]
    return transaction_id


async def receipts(database_url: str) -> dict[str, str]:
    """The receipt jobs' status, by the payment they are for."""
    rows = await query_on(
        database_url, "SELECT args ->> 'transaction_id', status FROM jobs WHERE kind = :kind",
        kind=RECEIPT,
    )  # fmt: skip
    return {str(transaction_id): str(status) for transaction_id, status in rows}


async def emails(outbox: Path) -> int:
    return len([path async for path in anyio.Path(outbox).glob("*.eml")])


async def wait_for_emails(outbox: Path, count: int) -> None:
    """Until `count` emails are in the outbox (the worker writes them: polling another
    process's work, there is no event to wait on)."""
    with anyio.move_on_after(DELIVERY_SECONDS):
        while await emails(outbox) < count:  # noqa: ASYNC110
            await anyio.sleep(0.1)
        return
    raise AssertionError(f"{await emails(outbox)} emails of {count} after {DELIVERY_SECONDS} s")


async def test_redis_stopped_and_restarted_under_the_server_and_a_worker(
    app_database: str,
    redis_server: RedisServer,
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    settings = server_settings(tmp_path, REDIS_URL=redis_server.url)
    server = await start_server(app_database, **settings)
    worker_settings = {name: settings[name] for name in ("STORAGE_DIR", "EMAIL_OUTBOX_DIR")}
    async with (
        worker(app_database, redis_server.url, env=worker_settings) as consumer,
        server.client() as client,
    ):
        payer = await new_person(client, name="Payer", balance="50.00")
        payee = await new_person(client, name="Payee")
        paid = [await pay(client, payer.headers, payee)]
        await wait_for_emails(outbox, 2)  # a receipt to each side

        await redis_server.stop()
        headers = await sign_in(client, payer)
        for _ in range(PAYMENTS_WHILE_DOWN):
            paid.append(await pay(client, headers, payee))
        assert (await client.get(f"{API}/wallet", headers=headers)).json()["balance"] == "46.00"
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] != "ok"
        waiting = await receipts(app_database)
        assert [waiting[t] for t in paid[1:]] == ["queued"] * PAYMENTS_WHILE_DOWN
        assert await emails(outbox) == 2

        await redis_server.start()  # the same port, empty: no stream, no consumer group
        await wait_for_emails(outbox, 2 * len(paid))
        headers = await sign_in(client, payer)
        paid.append(await pay(client, headers, payee))
        await wait_for_emails(outbox, 2 * len(paid))
        assert (await client.get("/health/ready")).status_code == 200
        assert consumer.process.returncode is None, consumer.output

    delivered = await receipts(app_database)
    assert delivered == dict.fromkeys(paid, "succeeded")
    assert await emails(outbox) == 2 * len(paid)
    assert await assert_money_consistent(app_database, paid) == len(paid)
    assert "Traceback" not in server.log, server.log
