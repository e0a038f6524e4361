"""GET /transactions (cursor pages, newest first) and GET /transactions/{id}."""

from __future__ import annotations

import uuid

from httpx import AsyncClient

from app.core.pagination import encode_cursor
from tests.wallet.conftest import (
    PAYMENTS,
    TOP_UPS,
    TRANSACTIONS,
    NewMember,
    assert_problem,
    card,
)


async def test_pages_are_newest_first_and_cover_every_row_once(
    client: AsyncClient, member: NewMember
) -> None:
    alice, bob = await member(), await member()
    amounts = [f"{n}.00" for n in range(1, 8)]
    for amount in amounts:
        response = await client.post(
            TOP_UPS, json={"amount": amount, "card": card()}, headers=alice.headers
        )
        assert response.status_code == 201
    response = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": "0.50"}, headers=alice.headers
    )
    assert response.status_code == 201

    seen: list[dict[str, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(TRANSACTIONS, params=params, headers=alice.headers)).json()
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [tx["amount"] for tx in seen] == ["0.50", *reversed(amounts)]
    assert seen[0]["kind"] == "payment_sent"
    assert len({tx["id"] for tx in seen}) == 8
    created = [tx["created_at"] for tx in seen]
    assert created == sorted(created, reverse=True)
    # Bob sees his side only.
    bobs = (await client.get(TRANSACTIONS, headers=bob.headers)).json()
    assert [tx["kind"] for tx in bobs["items"]] == ["payment_received"]
    assert bobs["next_cursor"] is None


async def test_a_bad_cursor_or_limit_is_a_422(client: AsyncClient, member: NewMember) -> None:
    alice = await member("1.00")
    for cursor in (
        "not base64 at all!",
        encode_cursor({"at": "yesterday", "id": str(uuid.uuid4())}),
        encode_cursor({"at": "2026-11-22T08:00:00", "id": str(uuid.uuid4())}),  # naive time
        encode_cursor({"at": "2026-11-22T08:00:00+00:00", "id": "not-a-uuid"}),
        encode_cursor({"at": 1, "id": 2}),
        encode_cursor({"id": 1}),
    ):
        response = await client.get(TRANSACTIONS, params={"cursor": cursor}, headers=alice.headers)
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["code"] in {"invalid_cursor", "validation_error"}
    for limit in (0, 201, "many"):
        response = await client.get(TRANSACTIONS, params={"limit": limit}, headers=alice.headers)
        assert_problem(response, 422, "validation_error")


async def test_a_transaction_is_visible_to_its_owner_and_superusers_only(
    client: AsyncClient, member: NewMember, superuser_headers: dict[str, str]
) -> None:
    alice, mallory = await member("5.00"), await member()
    [top_up] = (await client.get(TRANSACTIONS, headers=alice.headers)).json()["items"]
    url = f"{TRANSACTIONS}/{top_up['id']}"

    response = await client.get(url, headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == top_up

    assert_problem(await client.get(url, headers=mallory.headers), 404, "transaction_not_found")
    response = await client.get(url, headers=superuser_headers)
    assert response.status_code == 200
    assert response.json()["id"] == top_up["id"]

    missing = f"{TRANSACTIONS}/{uuid.uuid4()}"
    assert_problem(await client.get(missing, headers=alice.headers), 404, "transaction_not_found")
    response = await client.get(f"{TRANSACTIONS}/42", headers=alice.headers)
    assert_problem(response, 422, "validation_error")
