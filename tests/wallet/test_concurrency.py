"""Money under real concurrency: many requests at once through the app, on the real database
(SQLite and PostgreSQL), each with its own session and connection."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from httpx import AsyncClient

from tests.wallet.conftest import PAYMENTS, Invariants, NewMember, assert_problem, balance_of


async def test_100_concurrent_payments_covering_40_give_exactly_40(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice = await member("100.00")
    payees = [await member() for _ in range(4)]
    requests = [
        client.post(
            PAYMENTS,
            json={"payee_id": payees[n % 4].id, "amount": "2.50"},
            headers=alice.headers,
        )
        for n in range(100)
    ]
    responses = await asyncio.gather(*requests)

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 40, 400: 60}, statuses
    for response in responses:
        if response.status_code == 400:
            assert_problem(response, 400, "insufficient_funds")
    assert await balance_of(client, alice) == "0.00"
    # Every successful debit saw a distinct balance: none was read stale and written back.
    after = sorted(r.json()["balance_after"] for r in responses if r.status_code == 201)
    assert after == sorted(f"{n * 2.5:.2f}" for n in range(40))
    received = [await balance_of(client, payee) for payee in payees]
    assert sum(float(balance) for balance in received) == 100.0
    await check_invariants()


async def test_crossing_payments_all_succeed_without_deadlock(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    alice, bob = await member("50.00"), await member("50.00")
    rounds = 40
    requests = []
    for _ in range(rounds):
        requests.append(
            client.post(
                PAYMENTS, json={"payee_id": bob.id, "amount": "1.00"}, headers=alice.headers
            )
        )
        requests.append(
            client.post(
                PAYMENTS, json={"payee_id": alice.id, "amount": "1.00"}, headers=bob.headers
            )
        )
    responses = await asyncio.gather(*requests)

    assert [r.status_code for r in responses] == [201] * (2 * rounds), [
        r.text for r in responses if r.status_code != 201
    ]
    assert await balance_of(client, alice) == "50.00"
    assert await balance_of(client, bob) == "50.00"
    await check_invariants()


async def test_a_ring_of_payments_conserves_the_total(
    client: AsyncClient, member: NewMember, check_invariants: Invariants
) -> None:
    people = [await member("10.00") for _ in range(5)]
    requests = [
        client.post(
            PAYMENTS,
            json={"payee_id": people[(i + step) % 5].id, "amount": "0.75"},
            headers=people[i].headers,
        )
        for step in (1, 2, 3, 4)
        for i in range(5)
        for _ in range(3)
    ]
    responses = await asyncio.gather(*requests)
    # Each person pays 12 x 0.75 = 9.00 and receives the same: every payment can succeed.
    assert {r.status_code for r in responses} == {201}
    assert [await balance_of(client, person) for person in people] == ["10.00"] * 5
    await check_invariants()


# Payments to accounts already deleted are 404s: more than the default allowance of them.
@pytest.mark.parametrize(
    "settings", [{"payee_lookup_failures_per_user": "1000/minute"}], indirect=True
)
async def test_deleting_users_while_they_are_paid_keeps_the_ledger_whole(
    client: AsyncClient,
    member: NewMember,
    check_invariants: Invariants,
    superuser_headers: dict[str, str],
) -> None:
    """Issue #15, item 6. Before: deleting a user with a balance and a history left the sum of
    balances unequal to the sum of credits and a transfer with one side. After: 30 payments to
    3 people race their deletion; each payment either lands first (and that deletion is
    refused, 409 `balance_not_zero`) or finds the account gone (404 `payee_not_found`), and
    the invariants hold, deleted users included."""
    alice = await member("30.00")
    payees = [await member() for _ in range(3)]
    payments = [
        client.post(
            PAYMENTS, json={"payee_id": payees[n % 3].id, "amount": "1.00"}, headers=alice.headers
        )
        for n in range(30)
    ]
    deletions = [
        client.delete(f"/api/v1/users/{payee.id}", headers=superuser_headers) for payee in payees
    ]
    responses = await asyncio.gather(*payments, *deletions)

    paid, deleted = responses[:30], responses[30:]
    assert {r.status_code for r in paid} <= {201, 404}, [r.text for r in paid]
    assert {r.status_code for r in deleted} <= {204, 409}, [r.text for r in deleted]
    for payee, deletion in zip(payees, deleted, strict=True):
        received = [
            r for r in paid if r.status_code == 201 and r.json()["counterparty_id"] == payee.id
        ]
        # A deleted account received nothing after its deletion: its balance was zero then.
        if deletion.status_code == 409:
            assert_problem(deletion, 409, "balance_not_zero")
            assert received
    await check_invariants()

    # Pay one out to zero, then its deletion goes through; the invariants still hold.
    survivor = next((p for p, d in zip(payees, deleted, strict=True) if d.status_code == 409), None)
    if survivor is not None:
        owed = await balance_of(client, survivor)
        body = {"payee_id": alice.id, "amount": owed}
        assert (await client.post(PAYMENTS, json=body, headers=survivor.headers)).status_code == 201
        response = await client.delete(f"/api/v1/users/{survivor.id}", headers=superuser_headers)
        assert response.status_code == 204, response.text
    await check_invariants()
