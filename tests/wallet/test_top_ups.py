"""POST /wallet/top-ups with the sandbox gateway, and GET /wallet."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from app.core.db import Database
from app.wallet.models import Transaction
from tests.wallet.conftest import (
    DECLINED,
    ISSUER_INSUFFICIENT,
    TOP_UPS,
    TRANSACTIONS,
    WALLET,
    Invariants,
    NewMember,
    assert_problem,
    balance_of,
    card,
)


async def test_a_new_wallet_is_empty(client: AsyncClient, member: NewMember) -> None:
    alice = await member()
    response = await client.get(WALLET, headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {"balance": "0.00", "currency": "USD"}


async def test_top_up_credits_the_balance_and_keeps_only_brand_and_last4(
    client: AsyncClient, member: NewMember, db: Database, check_invariants: Invariants
) -> None:
    alice = await member()
    response = await client.post(
        TOP_UPS,
        json={"amount": "25.50", "card": card("5555-5555-5555-4444", cvv="987")},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "top_up"
    assert body["amount"] == "25.50"
    assert body["balance_after"] == "25.50"
    assert body["card_brand"] == "mastercard"
    assert body["card_last4"] == "4444"
    assert body["counterparty_id"] is None
    assert "5555555555554444" not in response.text
    # The CVV is echoed nowhere: the generated id and timestamp may hold "987" by chance.
    assert not any(word in response.text.lower() for word in ("cvv", "cvc"))
    assert not any("987" in str(v) for k, v in body.items() if k not in {"id", "created_at"})
    assert await balance_of(client, alice) == "25.50"

    async with db.sessionmaker() as session:
        tx = await session.get(Transaction, uuid.UUID(body["id"]))
    assert tx is not None
    assert (tx.amount_minor, tx.balance_after_minor) == (2550, 2550)
    assert tx.gateway_reference
    assert tx.gateway_reference.startswith("sandbox_")
    await check_invariants()


async def test_amounts_are_exact_decimals(client: AsyncClient, member: NewMember) -> None:
    alice = await member()
    for amount in (0.1, 0.2, "0.30", 1e2):
        response = await client.post(
            TOP_UPS, json={"amount": amount, "card": card()}, headers=alice.headers
        )
        assert response.status_code == 201, response.text
    # 0.1 + 0.2 + 0.30 + 100 in floats is 100.60000000000001; in cents it is 10060.
    assert await balance_of(client, alice) == "100.60"


@pytest.mark.parametrize(
    ("number", "code"),
    [(DECLINED, "card_declined"), (ISSUER_INSUFFICIENT, "card_insufficient_funds")],
)
async def test_a_declined_card_moves_no_money(
    client: AsyncClient,
    member: NewMember,
    db: Database,
    number: str,
    code: str,
    check_invariants: Invariants,
) -> None:
    alice = await member("10.00")
    response = await client.post(
        TOP_UPS, json={"amount": "5.00", "card": card(number)}, headers=alice.headers
    )
    body = assert_problem(response, 402, code)
    assert number not in response.text
    assert body["title"] == "Payment Required"
    assert await balance_of(client, alice) == "10.00"
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Transaction)) == 1
    await check_invariants()


BAD_CARDS: list[tuple[str, dict[str, Any]]] = [
    ("luhn", card("4242 4242 4242 4241")),
    ("too_short", card("42424242424")),
    ("too_long", card("4" * 19 + "2")),
    ("letters", card("4242 4242 4242 424x")),
    ("unicode_digits", card("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢")),
    ("expired", card(expiry="01/20")),
    ("month_13", card(expiry="13/30")),
    ("expiry_format", card(expiry="2030-12")),
    ("cvv_short", card(cvv="12")),
    ("cvv_letters", card(cvv="12a")),
    ("number_not_string", {"number": 4242424242424242, "expiry": "12/39", "cvv": "123"}),
    ("unknown_field", {**card(), "holder": "Alice"}),
    ("missing_cvv", {"number": "4242424242424242", "expiry": "12/39"}),
]


@pytest.mark.parametrize(("case", "bad_card"), BAD_CARDS, ids=[case for case, _ in BAD_CARDS])
async def test_an_invalid_card_is_a_422_that_does_not_echo_it(
    client: AsyncClient, member: NewMember, case: str, bad_card: dict[str, Any]
) -> None:
    alice = await member()
    response = await client.post(
        TOP_UPS, json={"amount": "5.00", "card": bad_card}, headers=alice.headers
    )
    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"][:2] == ["body", "card"] for error in body["errors"]), body
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
    number = str(bad_card.get("number", ""))
    if number:
        assert number not in response.text
        assert number.replace(" ", "") not in response.text
    assert await balance_of(client, alice) == "0.00"


@pytest.mark.parametrize(
    "amount",
    [0, "0.00", -5, "1.001", "1000000.01", "NaN", "Infinity", True, None, "ten", "1e9", []],
)
async def test_an_invalid_amount_is_a_422(
    client: AsyncClient, member: NewMember, amount: Any
) -> None:
    alice = await member()
    response = await client.post(
        TOP_UPS, json={"amount": amount, "card": card()}, headers=alice.headers
    )
    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"] == ["body", "amount"] for error in body["errors"]), body


async def test_the_largest_amount_is_accepted(client: AsyncClient, member: NewMember) -> None:
    alice = await member()
    response = await client.post(
        TOP_UPS, json={"amount": "1000000.00", "card": card()}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["balance_after"] == "1000000.00"


async def test_a_body_that_is_not_json_is_a_422(client: AsyncClient, member: NewMember) -> None:
    alice = await member()
    response = await client.post(
        TOP_UPS,
        content=b'{"amount": "5.00", "card": {',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation_error")


async def test_wallet_routes_need_a_token(client: AsyncClient) -> None:
    for method, url, body in (
        ("GET", WALLET, None),
        ("POST", TOP_UPS, {"amount": "5.00", "card": card()}),
        ("GET", TRANSACTIONS, None),
    ):
        response = await client.request(method, url, json=body)
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
