"""POST /payments: both sides, both balances, the receipt, and every refusal."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anyio
import pytest
from httpx import AsyncClient
from sqlalchemy import select, update

from app.core.db import Database
from app.jobs.models import Job
from app.users.models import User
from app.wallet.models import Transaction
from tests.wallet.conftest import (
    PAYMENTS,
    TRANSACTIONS,
    Invariants,
    NewMember,
    assert_problem,
    balance_of,
)


async def test_a_payment_moves_money_and_writes_both_sides(
    client: AsyncClient, member: NewMember, db: Database, check_invariants: Invariants
) -> None:
    alice, bob = await member("100.00"), await member()
    response = await client.post(
        PAYMENTS,
        json={"payee_id": bob.id, "amount": "12.50", "description": "lunch"},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["kind"] == "payment_sent"
    assert (sent["amount"], sent["balance_after"]) == ("12.50", "87.50")
    assert sent["counterparty_id"] == bob.id
    assert sent["description"] == "lunch"
    assert sent["card_brand"] is None
    assert sent["card_last4"] is None
    assert await balance_of(client, alice) == "87.50"
    assert await balance_of(client, bob) == "12.50"

    received = (await client.get(TRANSACTIONS, headers=bob.headers)).json()["items"]
    assert len(received) == 1
    assert received[0]["kind"] == "payment_received"
    assert (received[0]["amount"], received[0]["balance_after"]) == ("12.50", "12.50")
    assert received[0]["counterparty_id"] == alice.id

    async with db.sessionmaker() as session:
        sides = (
            await session.scalars(select(Transaction).where(Transaction.transfer_id.is_not(None)))
        ).all()
        assert len({side.transfer_id for side in sides}) == 1
        assert len(sides) == 2
    await check_invariants()


async def test_a_payment_queues_one_receipt_job_for_the_payers_side(
    client: AsyncClient, member: NewMember, db: Database
) -> None:
    alice, bob = await member("10.00"), await member()
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "1.00"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    async with db.sessionmaker() as session:
        jobs = (
            await session.scalars(select(Job).where(Job.kind == "notifications.payment_receipt"))
        ).all()
    assert [(job.args, job.user_id) for job in jobs] == [
        ({"transaction_id": response.json()["id"]}, alice.id)
    ]


async def test_pay_by_email_case_insensitively(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice, bob = await member("10.00"), await member()
    response = await client.post(
        PAYMENTS,
        json={"payee_email": bob.email.upper(), "amount": 3},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["counterparty_id"] == bob.id
    assert await balance_of(client, bob) == "3.00"
    await check_invariants()


async def test_paying_more_than_the_balance_is_a_400_and_moves_nothing(
    client: AsyncClient, member: NewMember, db: Database, check_invariants: Invariants
) -> None:
    alice, bob = await member("10.00"), await member()
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "10.01"}, headers=alice.headers
    )
    assert_problem(response, 400, "insufficient_funds")
    # Exactly the balance is fine.
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "10.00"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    assert await balance_of(client, alice) == "0.00"
    await check_invariants()


async def test_a_payee_with_a_lower_id_is_not_credited_when_the_payer_cannot_pay(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    # The lower id is updated first (lock order): here that is the payee's credit, which must
    # be rolled back when the payer's debit then fails.
    bob = await member()
    alice = await member("1.00")
    assert bob.id < alice.id
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "2.00"}, headers=alice.headers
    )
    assert_problem(response, 400, "insufficient_funds")
    assert await balance_of(client, bob) == "0.00"
    await check_invariants()


async def test_an_unknown_or_inactive_payee_is_a_404(
    client: AsyncClient, member: NewMember, db: Database
) -> None:
    alice, bob = await member("10.00"), await member()
    for body in (
        {"payee_id": 2**63 - 1, "amount": "1.00"},
        {"payee_email": "nobody@example.com", "amount": "1.00"},
    ):
        assert_problem(
            await client.post(PAYMENTS, json=body, headers=alice.headers), 404, "payee_not_found"
        )

    async with db.sessionmaker() as session:
        await session.execute(update(User).where(User.id == bob.id).values(is_active=False))
        await session.commit()
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "1.00"}, headers=alice.headers
    )
    assert_problem(response, 404, "payee_not_found")
    assert await balance_of(client, alice) == "10.00"


async def test_paying_oneself_is_a_422(client: AsyncClient, member: NewMember) -> None:
    alice = await member("10.00")
    for body in (
        {"payee_id": alice.id, "amount": "1"},
        {"payee_email": alice.email, "amount": "1"},
    ):
        response = await client.post(PAYMENTS, json=body, headers=alice.headers)
        assert_problem(response, 422, "payment_to_self")
    assert await balance_of(client, alice) == "10.00"


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "1.00"},
        {"payee_id": 2, "payee_email": "b@example.com", "amount": "1.00"},
        {"payee_id": 0, "amount": "1.00"},
        {"payee_id": 2**63, "amount": "1.00"},
        {"payee_id": "two", "amount": "1.00"},
        {"payee_email": "not-an-email", "amount": "1.00"},
        {"payee_id": 2, "amount": "0.001"},
        {"payee_id": 2, "amount": "-1"},
        {"payee_id": 2, "amount": "1.00", "description": "x" * 201},
        {"payee_id": 2, "amount": "1.00", "description": "   "},
        {"payee_id": 2, "amount": "1.00", "currency": "EUR"},
    ],
)
async def test_a_malformed_payment_is_a_422(
    client: AsyncClient, member: NewMember, body: dict[str, Any]
) -> None:
    alice = await member("10.00")
    response = await client.post(PAYMENTS, json=body, headers=alice.headers)
    assert_problem(response, 422, "validation_error")
    assert await balance_of(client, alice) == "10.00"


async def test_a_payment_needs_a_valid_token(client: AsyncClient) -> None:
    response = await client.post(
        PAYMENTS,
        json={"payee_id": 1, "amount": "1.00"},
        headers={"Authorization": f"Bearer {uuid.uuid4().hex}"},
    )
    assert_problem(response, 401, "invalid_token")


@pytest.mark.usefixtures("job_worker")
async def test_both_sides_get_a_receipt_by_email_after_the_payment(
    client: AsyncClient, member: NewMember, settings: Any
) -> None:
    alice, bob = await member("10.00"), await member()
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "2.50"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text

    # Sent by the job runner, outside the request: wait (bounded) for the two messages.
    outbox = anyio.Path(settings.email_outbox_dir)
    messages: list[str] = []
    with anyio.fail_after(20):
        while len(messages) < 2:
            await anyio.sleep(0.1)
            if await outbox.exists():
                messages = [await path.read_text() async for path in outbox.glob("*.eml")]
    recipients = sorted(
        line.split(":", 1)[1].strip()
        for message in messages
        for line in message.splitlines()
        if line.lower().startswith("to:")
    )
    assert recipients == sorted([alice.email, bob.email])
    assert any("You paid 2.50" in message for message in messages)
    assert any("You received 2.50" in message for message in messages)


async def test_a_refused_payment_queues_no_receipt(
    client: AsyncClient, member: NewMember, db: Database
) -> None:
    alice, bob = await member("1.00"), await member()
    for body in (
        {"payee_id": bob.id, "amount": "5.00"},  # insufficient funds, after the job was queued
        {"payee_id": alice.id, "amount": "0.50"},  # paying oneself
    ):
        response = await client.post(PAYMENTS, json=body, headers=alice.headers)
        assert response.status_code in (400, 422), response.text
    async with db.sessionmaker() as session:
        jobs = (
            await session.scalars(select(Job).where(Job.kind == "notifications.payment_receipt"))
        ).all()
    assert jobs == []


# --- probing which emails are registered (issue #15, item 7) -------------------------------


async def test_an_empty_wallet_learns_nothing_about_the_payee(
    client: AsyncClient, member: NewMember
) -> None:
    """Before: from an empty wallet, an unknown `payee_email` was 404 and a registered one 400
    `insufficient_funds` (200 such probes took 0.6 s). After: both are 400: the funds are
    checked before the payee is looked up."""
    prober, registered = await member(), await member()
    for email in (registered.email, "nobody-at-all@example.com"):
        response = await client.post(
            PAYMENTS, json={"payee_email": email, "amount": "1.00"}, headers=prober.headers
        )
        assert_problem(response, 400, "insufficient_funds")


@pytest.mark.parametrize(
    "settings", [{"payee_lookup_failures_per_user": "3/minute"}], indirect=True
)
async def test_payee_not_found_answers_are_limited_per_user(
    client: AsyncClient, member: NewMember
) -> None:
    """Before: unlimited 404 `payee_not_found` answers (200 probes in 0.6 s). After: 3 a
    minute per user, then 429 with Retry-After for any payee, even a registered one (so the
    answers stop telling them apart); another user is not affected."""
    prober, registered, other = await member("10.00"), await member(), await member("10.00")
    for number in range(3):
        body = {"payee_email": f"probe-{number}@example.com", "amount": "0.01"}
        response = await client.post(PAYMENTS, json=body, headers=prober.headers)
        assert_problem(response, 404, "payee_not_found")

    for email in ("probe-9@example.com", registered.email):
        body = {"payee_email": email, "amount": "0.01"}
        response = await client.post(PAYMENTS, json=body, headers=prober.headers)
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1
    assert await balance_of(client, prober) == "10.00"

    body = {"payee_email": registered.email, "amount": "0.01"}
    assert (await client.post(PAYMENTS, json=body, headers=other.headers)).status_code == 201


@pytest.mark.parametrize(
    "settings", [{"payee_lookup_failures_per_user": "5/minute"}], indirect=True
)
async def test_parallel_probes_cannot_outrun_the_payee_limit(
    client: AsyncClient, member: NewMember
) -> None:
    """20 probes at once: exactly 5 are answered 404, the rest 429."""
    prober = await member("10.00")
    responses = await asyncio.gather(
        *(
            client.post(
                PAYMENTS,
                json={"payee_email": f"burst-{n}@example.com", "amount": "0.01"},
                headers=prober.headers,
            )
            for n in range(20)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [404] * 5 + [429] * 15, statuses
