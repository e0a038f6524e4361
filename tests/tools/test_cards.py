"""The card checker: the wallet's own card rules, served as tools. Never echoes a number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient

BASE = "/api/v1/tools"
VISA = "4242 4242 4242 4242"
NEXT_YEAR = f"12/{(datetime.now(UTC).year + 1) % 100:02d}"


async def test_a_valid_card_gives_brand_and_last4_only(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.post(
        f"{BASE}/check_card",
        json={"card": {"number": VISA, "expiry": NEXT_YEAR, "cvv": "123"}},
        headers=user_headers,
    )
    assert response.status_code == 200, response.text
    year = 2000 + int(NEXT_YEAR[-2:])
    assert response.json() == {
        "result": {"brand": "visa", "last4": "4242", "expiry_year": year, "expiry_month": 12}
    }
    assert "4242424242424242" not in response.text
    assert "123" not in response.text


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"number": "4242424242424241", "expiry": NEXT_YEAR, "cvv": "123"}, "number"),
        ({"number": VISA, "expiry": "01/20", "cvv": "123"}, "expiry"),
        ({"number": VISA, "expiry": NEXT_YEAR, "cvv": "12"}, "cvv"),
        ({"number": VISA, "expiry": NEXT_YEAR, "cvv": "123", "pin": "0000"}, "pin"),
    ],
)
async def test_an_invalid_card_is_a_422_that_does_not_echo_it(
    client: AsyncClient, user_headers: dict[str, str], card: dict[str, str], field: str
) -> None:
    response = await client.post(f"{BASE}/check_card", json={"card": card}, headers=user_headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "card", field]
    assert card["number"].replace(" ", "") not in response.text.replace(" ", "")


async def test_a_number_alone(client: AsyncClient, user_headers: dict[str, str]) -> None:
    ok = await client.post(
        f"{BASE}/check_card_number", json={"number": "5555-5555-5555-4444"}, headers=user_headers
    )
    assert ok.json() == {"result": {"brand": "mastercard", "last4": "4444", "digits": 16}}
    bad = await client.post(
        f"{BASE}/check_card_number", json={"number": "5555555555554445"}, headers=user_headers
    )
    assert bad.status_code == 422
    # The wallet's InvalidCard is a ValueError: named for what it means, not for its base.
    assert bad.json()["code"] == "invalid_card"
    assert "5555555555554445" not in bad.text


async def test_the_check_digit(client: AsyncClient, user_headers: dict[str, str]) -> None:
    response = await client.post(
        f"{BASE}/card_check_digit", json={"partial_number": "424242424242424"}, headers=user_headers
    )
    assert response.json() == {"result": "2"}
    for partial in ("4242", "42424242424242x", "4" * 19):
        bad = await client.post(
            f"{BASE}/card_check_digit", json={"partial_number": partial}, headers=user_headers
        )
        assert bad.status_code == 422, partial
