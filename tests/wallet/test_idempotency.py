"""`Idempotency-Key` on the routes that move money: a replay answers with the first response
and `Idempotent-Replayed: true`; another body with the key is a 422; concurrent requests with
one key move the money once. The records live in the database, beside the money."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update

from app.core.db import Database, utcnow
from app.jobs.models import Job
from app.wallet.models import IdempotencyRecord, Transaction
from app.wallet.service import RECEIPT_JOB
from tests.wallet.conftest import (
    DECLINED,
    PAYMENTS,
    TOP_UPS,
    Invariants,
    NewMember,
    assert_problem,
    balance_of,
    card,
)


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.sessionmaker() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(query) or 0)


async def test_a_replayed_payment_answers_the_same_and_moves_money_once(
    client: AsyncClient, member: NewMember, db: Database, check_invariants: Invariants
) -> None:
    alice, bob = await member("20.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "pay-1"}
    request = {"payee_id": bob.id, "amount": "5.00", "description": "rent"}

    first = await client.post(PAYMENTS, json=request, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await client.post(PAYMENTS, json=request, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()

    assert await balance_of(client, alice) == "15.00"
    assert await balance_of(client, bob) == "5.00"
    assert await count(db, Transaction) == 3  # the top-up and the payment's two sides
    assert await count(db, Job, Job.kind == RECEIPT_JOB) == 1
    await check_invariants()


async def test_the_key_with_another_body_is_a_422(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice, bob = await member("20.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "pay-2"}
    first = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "5.00"}, headers=headers
    )
    assert first.status_code == 201, first.text
    for changed in (
        {"payee_id": bob.id, "amount": "6.00"},
        {"payee_id": bob.id, "amount": "5.00", "description": "more"},
        {"payee_email": bob.email, "amount": "5.00"},
    ):
        response = await client.post(PAYMENTS, json=changed, headers=headers)
        assert_problem(response, 422, "idempotency_key_reused")
    # The same key on the other money route is another request, too.
    response = await client.post(TOP_UPS, json={"amount": "5.00", "card": card()}, headers=headers)
    assert_problem(response, 422, "idempotency_key_reused")
    assert await balance_of(client, alice) == "15.00"
    await check_invariants()


async def test_equivalent_bodies_are_the_same_request(
    client: AsyncClient, member: NewMember
) -> None:
    alice, bob = await member("20.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "pay-3"}
    first = await client.post(
        PAYMENTS, json={"payee_email": bob.email, "amount": "5"}, headers=headers
    )
    assert first.status_code == 201, first.text
    # The same amount written differently, the same address in capitals: the same request.
    again = await client.post(
        PAYMENTS, json={"amount": 5.0, "payee_email": bob.email.upper()}, headers=headers
    )
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert await balance_of(client, alice) == "15.00"


async def test_a_refusal_is_replayed_too(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice, bob = await member("1.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "pay-4"}
    request = {"payee_id": bob.id, "amount": "5.00"}
    assert_problem(
        await client.post(PAYMENTS, json=request, headers=headers), 400, "insufficient_funds"
    )

    top_up = await client.post(
        TOP_UPS, json={"amount": "10.00", "card": card()}, headers=alice.headers
    )
    assert top_up.status_code == 201
    # The first answer to this key was "insufficient funds", and it stays the answer: a client
    # that wants a new attempt sends a new key.
    replay = await client.post(PAYMENTS, json=request, headers=headers)
    assert_problem(replay, 400, "insufficient_funds")
    assert replay.headers["idempotent-replayed"] == "true"
    fresh = await client.post(
        PAYMENTS, json=request, headers={**alice.headers, "Idempotency-Key": "pay-5"}
    )
    assert fresh.status_code == 201, fresh.text
    assert await balance_of(client, alice) == "6.00"
    await check_invariants()


async def test_keys_belong_to_their_user(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice, bob, carol = await member("10.00"), await member("10.00"), await member()
    for payer in (alice, bob):
        response = await client.post(
            PAYMENTS,
            json={"payee_id": carol.id, "amount": "2.00"},
            headers={**payer.headers, "Idempotency-Key": "shared"},
        )
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
    assert await balance_of(client, carol) == "4.00"
    await check_invariants()


async def test_concurrent_requests_with_one_key_move_money_once(
    client: AsyncClient, member: NewMember, db: Database, check_invariants: Invariants
) -> None:
    alice, bob = await member("100.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "burst"}
    request = {"payee_id": bob.id, "amount": "10.00"}
    responses = await asyncio.gather(
        *(client.post(PAYMENTS, json=request, headers=headers) for _ in range(20))
    )

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency_in_progress")
    created = [r for r in responses if r.status_code == 201]
    originals = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(originals) == 1
    assert {r.json()["id"] for r in created} == {originals[0].json()["id"]}
    assert await balance_of(client, alice) == "90.00"
    assert await balance_of(client, bob) == "10.00"
    assert await count(db, Job, Job.kind == RECEIPT_JOB) == 1
    await check_invariants()


async def test_concurrent_top_ups_with_one_key_charge_once(
    client: AsyncClient, member: NewMember, db: Database, check_invariants: Invariants
) -> None:
    alice = await member()
    headers = {**alice.headers, "Idempotency-Key": "burst-top-up"}
    request = {"amount": "10.00", "card": card()}
    responses = await asyncio.gather(
        *(client.post(TOP_UPS, json=request, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    originals = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(originals) == 1
    assert await balance_of(client, alice) == "10.00"
    assert await count(db, Transaction) == 1
    await check_invariants()


async def test_a_replayed_top_up_answers_the_same_and_a_decline_stays_a_decline(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice = await member()
    headers = {**alice.headers, "Idempotency-Key": "top-1"}
    request = {"amount": "8.00", "card": card()}
    first = await client.post(TOP_UPS, json=request, headers=headers)
    again = await client.post(TOP_UPS, json=request, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    # Another card with the key is another request.
    other = {"amount": "8.00", "card": card("5555 5555 5555 4444")}
    assert_problem(
        await client.post(TOP_UPS, json=other, headers=headers), 422, "idempotency_key_reused"
    )

    declined = {"amount": "8.00", "card": card(DECLINED)}
    headers = {**alice.headers, "Idempotency-Key": "top-2"}
    assert_problem(await client.post(TOP_UPS, json=declined, headers=headers), 402, "card_declined")
    replay = await client.post(TOP_UPS, json=declined, headers=headers)
    body = assert_problem(replay, 402, "card_declined")
    assert replay.headers["idempotent-replayed"] == "true"
    assert DECLINED not in replay.text
    assert body["detail"] == "the card was declined"
    assert await balance_of(client, alice) == "8.00"
    await check_invariants()


async def test_a_key_older_than_a_day_is_free_again(
    client: AsyncClient, member: NewMember, db: Database
) -> None:
    alice, bob = await member("20.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "old"}
    request = {"payee_id": bob.id, "amount": "1.00"}
    assert (await client.post(PAYMENTS, json=request, headers=headers)).status_code == 201
    async with db.sessionmaker() as session:
        await session.execute(
            update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25))
        )
        await session.commit()
    response = await client.post(PAYMENTS, json=request, headers=headers)
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert await balance_of(client, alice) == "18.00"


async def test_an_abandoned_claim_is_taken_over_after_its_lease(
    client: AsyncClient, member: NewMember, db: Database
) -> None:
    # A process died between claiming the key and finishing: no money moved (that would have
    # completed the record in the same transaction). Once the lease lapses, a retry proceeds.
    alice, bob = await member("20.00"), await member()
    headers = {**alice.headers, "Idempotency-Key": "orphan"}
    request = {"payee_id": bob.id, "amount": "1.00"}
    assert (await client.post(PAYMENTS, json=request, headers=headers)).status_code == 201
    async with db.sessionmaker() as session:
        await session.execute(
            update(IdempotencyRecord).values(
                response_status=None,
                response_body=None,
                locked_until=utcnow() + timedelta(minutes=1),
            )
        )
        await session.commit()
    assert_problem(
        await client.post(PAYMENTS, json=request, headers=headers), 409, "idempotency_in_progress"
    )

    async with db.sessionmaker() as session:
        await session.execute(
            update(IdempotencyRecord).values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    response = await client.post(PAYMENTS, json=request, headers=headers)
    assert response.status_code == 201, response.text
    assert await balance_of(client, alice) == "18.00"


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve", "tab\there"])
async def test_a_malformed_key_is_a_422(client: AsyncClient, member: NewMember, key: str) -> None:
    alice, bob = await member("5.00"), await member()
    response = await client.post(
        PAYMENTS,
        json={"payee_id": bob.id, "amount": "1.00"},
        # As bytes, so a non-ASCII key goes out as the UTF-8 a client would send.
        headers=[
            *((name.encode(), value.encode()) for name, value in alice.headers.items()),
            (b"Idempotency-Key", key.encode()),
        ],
    )
    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"] == ["header", "Idempotency-Key"] for error in body["errors"]), body
    assert await balance_of(client, alice) == "5.00"
