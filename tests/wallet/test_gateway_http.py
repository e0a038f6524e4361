"""The `http` gateway adapter (PAYMENT_GATEWAY=http) against a real HTTP gateway served by
uvicorn on loopback: approved, declined, slow (504), down (502), nonsense (502). A failure moves
no money; the idempotency key reaches the gateway; only a failure to connect is retried."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.core.db import Database
from app.core.dependencies import HttpClientDep
from app.core.settings import Settings
from app.lifespan import HTTP_CONNECT_RETRIES
from app.wallet.dependencies import get_gateway
from app.wallet.gateway import HttpGateway, PaymentGateway
from app.wallet.models import Transaction
from tests.wallet.conftest import (
    DECLINED,
    ISSUER_INSUFFICIENT,
    TOP_UPS,
    FakeGateway,
    Invariants,
    NewMember,
    assert_problem,
    balance_of,
    bound_socket,
    card,
    serving,
    wallet_settings,
)

UseGateway = Callable[..., None]


@pytest.fixture
def settings(database_url: str, tmp_path: Path, gateway_server: FakeGateway) -> Settings:
    return wallet_settings(
        database_url, tmp_path, payment_gateway="http", payment_gateway_url=gateway_server.url
    )


@pytest.fixture
def use_gateway(application: FastAPI) -> Iterator[UseGateway]:
    """Point the app at another gateway URL, or give the adapter shorter timeouts: the same
    `HttpGateway` on the app's shared client, configured for a test that cannot wait 10 s."""

    def _use(url: str, **options: Any) -> None:
        options = {"timeout": httpx.Timeout(2.0), **options}

        async def gateway(http: HttpClientDep) -> PaymentGateway:
            return HttpGateway(http, url, **options)

        application.dependency_overrides[get_gateway] = gateway

    yield _use
    application.dependency_overrides.pop(get_gateway, None)


@contextmanager
def gateway_events(
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The structured events the gateway adapter logs (through the app's logging set-up)."""
    events: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, dict):
                events.append(record.msg)
                if on_event is not None:
                    on_event(record.msg)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("app.wallet.gateway")
    logger.addHandler(handler)
    try:
        yield events
    finally:
        logger.removeHandler(handler)


@contextmanager
def connect_failures(on_failure: Callable[[], None] | None = None) -> Iterator[list[str]]:
    """The refused connects of the app's shared client, as httpcore's transport logs them (its
    retries happen inside the transport: this is where each attempt is seen)."""
    failures: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("connect_tcp.failed"):
                failures.append(record.getMessage())
                if on_failure is not None:
                    on_failure()  # synchronous: runs before the transport's next attempt

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("httpcore.connection")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield failures
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


async def count_transactions(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Transaction)) or 0)


async def test_an_approved_charge_sends_the_card_and_key_and_keeps_the_reference(
    client: AsyncClient,
    member: NewMember,
    db: Database,
    gateway_server: FakeGateway,
    check_invariants: Invariants,
) -> None:
    # No override: the adapter is the one PAYMENT_GATEWAY=http selects, on the shared client.
    alice = await member()
    response = await client.post(
        TOP_UPS,
        json={"amount": "25.50", "card": card("5555-5555-5555-4444", "07/38", "987")},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["card_brand"], body["card_last4"], body["amount"]) == (
        "mastercard",
        "4444",
        "25.50",
    )

    [sent] = gateway_server.requests
    assert sent["body"] == {
        "amount_minor": 2550,
        "currency": "USD",
        "card": {"number": "5555555555554444", "exp_month": 7, "exp_year": 2038, "cvv": "987"},
    }
    assert uuid.UUID(sent["key"])  # a key is always sent, even when the client gave none
    async with db.sessionmaker() as session:
        tx = await session.get(Transaction, uuid.UUID(body["id"]))
    assert tx is not None
    assert tx.gateway_reference == gateway_server.charges[sent["key"]]
    assert await balance_of(client, alice) == "25.50"
    await check_invariants()


@pytest.mark.parametrize(
    ("number", "code"),
    [(DECLINED, "card_declined"), (ISSUER_INSUFFICIENT, "card_insufficient_funds")],
)
async def test_a_decline_from_the_gateway_is_a_402(
    client: AsyncClient, member: NewMember, db: Database, number: str, code: str
) -> None:
    alice = await member()
    response = await client.post(
        TOP_UPS, json={"amount": "5.00", "card": card(number)}, headers=alice.headers
    )
    assert_problem(response, 402, code)
    assert number not in response.text
    assert await balance_of(client, alice) == "0.00"
    assert await count_transactions(db) == 0


async def test_a_slow_gateway_is_a_504_then_a_retry_with_the_key_charges_once(
    client: AsyncClient,
    member: NewMember,
    db: Database,
    gateway_server: FakeGateway,
    use_gateway: UseGateway,
    check_invariants: Invariants,
) -> None:
    use_gateway(gateway_server.url, timeout=httpx.Timeout(0.5))
    gateway_server.delay = 30
    alice = await member()
    headers = {**alice.headers, "Idempotency-Key": "slow-1"}
    request = {"amount": "7.00", "card": card()}

    with gateway_events() as events:
        response = await client.post(TOP_UPS, json=request, headers=headers)
    body = assert_problem(response, 504, "gateway_timeout")
    assert "Idempotency-Key" in body["detail"]
    # Sent once: a timeout after sending is not retried (the charge may have gone through).
    assert len(gateway_server.requests) == 1
    assert [event["event"] for event in events] == ["gateway_timeout"]
    assert await balance_of(client, alice) == "0.00"
    assert await count_transactions(db) == 0

    # The gateway recovers (and, as real ones do, finishes the first charge). The client
    # retries with its key: the gateway sees the same key and charges once.
    gateway_server.delay = 0
    gateway_server.release.set()
    response = await client.post(TOP_UPS, json=request, headers=headers)
    assert response.status_code == 201, response.text
    keys = [sent["key"] for sent in gateway_server.requests]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert len(gateway_server.charges) == 1
    assert await balance_of(client, alice) == "7.00"
    await check_invariants()


async def test_a_request_with_the_key_while_the_first_is_at_the_gateway_is_a_409(
    client: AsyncClient,
    member: NewMember,
    gateway_server: FakeGateway,
    use_gateway: UseGateway,
    check_invariants: Invariants,
) -> None:
    use_gateway(gateway_server.url, timeout=httpx.Timeout(30))
    gateway_server.delay = 30
    alice = await member()
    headers = {**alice.headers, "Idempotency-Key": "in-flight"}
    request = {"amount": "3.00", "card": card()}

    first = asyncio.create_task(client.post(TOP_UPS, json=request, headers=headers))
    async with asyncio.timeout(10):
        await gateway_server.arrived.wait()  # the first request is now held by the gateway
    second = await client.post(TOP_UPS, json=request, headers=headers)
    assert_problem(second, 409, "idempotency_in_progress")

    gateway_server.release.set()
    response = await first
    assert response.status_code == 201, response.text
    replay = await client.post(TOP_UPS, json=request, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == response.json()
    assert len(gateway_server.requests) == 1
    assert await balance_of(client, alice) == "3.00"
    await check_invariants()


async def test_a_gateway_that_is_down_is_a_502_after_retries_and_the_key_can_be_reused(
    client: AsyncClient,
    member: NewMember,
    db: Database,
    gateway_server: FakeGateway,
    down_gateway_url: str,
    use_gateway: UseGateway,
    check_invariants: Invariants,
) -> None:
    alice = await member()
    headers = {**alice.headers, "Idempotency-Key": "down-1"}
    request = {"amount": "4.00", "card": card()}

    use_gateway(down_gateway_url)
    with gateway_events() as events, connect_failures() as failures:
        response = await client.post(TOP_UPS, json=request, headers=headers)
    assert_problem(response, 502, "gateway_unavailable")
    # The first attempt and the transport's two retries (HTTP_CONNECT_RETRIES), then one event.
    assert len(failures) == 1 + HTTP_CONNECT_RETRIES
    assert [event["event"] for event in events] == ["gateway_unreachable"]
    assert await balance_of(client, alice) == "0.00"
    assert await count_transactions(db) == 0

    # Nothing was charged, so the key was given back: the same request goes through later.
    use_gateway(gateway_server.url)
    response = await client.post(TOP_UPS, json=request, headers=headers)
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert await balance_of(client, alice) == "4.00"
    await check_invariants()


async def test_a_refused_connection_is_retried_and_succeeds_once_the_gateway_is_up(
    client: AsyncClient, member: NewMember, use_gateway: UseGateway, check_invariants: Invariants
) -> None:
    alice = await member()
    with bound_socket() as sock:
        use_gateway(f"http://127.0.0.1:{sock.getsockname()[1]}")
        refused_once = asyncio.Event()

        def come_up() -> None:
            # The first attempt was refused: start listening before the retry (connections
            # queue in the backlog until the server below accepts them).
            if not refused_once.is_set():
                sock.listen(16)
                refused_once.set()

        with gateway_events() as events, connect_failures(come_up) as failures:
            pending = asyncio.create_task(
                client.post(TOP_UPS, json={"amount": "2.00", "card": card()}, headers=alice.headers)
            )
            async with asyncio.timeout(10):
                await refused_once.wait()
            async with serving(FakeGateway(), sock) as gateway:
                response = await pending

    assert response.status_code == 201, response.text
    assert len(failures) == 1
    assert not [e for e in events if e["event"] == "gateway_unreachable"]
    assert len(gateway.requests) == 1
    assert await balance_of(client, alice) == "2.00"
    await check_invariants()


@pytest.mark.parametrize("failure", ["garbage", 500, 503, 400])
async def test_a_gateway_error_or_nonsense_is_a_502_and_is_not_retried(
    client: AsyncClient,
    member: NewMember,
    db: Database,
    gateway_server: FakeGateway,
    use_gateway: UseGateway,
    failure: str | int,
) -> None:
    use_gateway(gateway_server.url)
    if failure == "garbage":
        gateway_server.answer_garbage = True
    else:
        assert isinstance(failure, int)
        gateway_server.fail_with = failure
    alice = await member()
    response = await client.post(
        TOP_UPS, json={"amount": "5.00", "card": card()}, headers=alice.headers
    )
    body = assert_problem(response, 502, "gateway_error")
    assert "internal" not in body["detail"]
    assert "html" not in body["detail"]
    assert len(gateway_server.requests) == 1
    assert await balance_of(client, alice) == "0.00"
    assert await count_transactions(db) == 0


async def test_each_user_and_key_reaches_the_gateway_as_its_own_key(
    client: AsyncClient, member: NewMember, gateway_server: FakeGateway
) -> None:
    alice, bob = await member(), await member()
    request = {"amount": "1.00", "card": card()}
    for who in (alice, bob):
        response = await client.post(
            TOP_UPS, json=request, headers={**who.headers, "Idempotency-Key": "same"}
        )
        assert response.status_code == 201, response.text
    for _ in range(2):  # no key: a fresh gateway key per request
        response = await client.post(TOP_UPS, json=request, headers=alice.headers)
        assert response.status_code == 201, response.text
    # A replay is answered from our database; the gateway is not asked again.
    replay = await client.post(
        TOP_UPS, json=request, headers={**alice.headers, "Idempotency-Key": "same"}
    )
    assert replay.headers["idempotent-replayed"] == "true"

    keys = [sent["key"] for sent in gateway_server.requests]
    assert len(keys) == 4
    assert len(set(keys)) == 4
    assert "same" not in keys
    assert await balance_of(client, alice) == "3.00"
