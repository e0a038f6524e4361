"""The I/O tool: `convert_currency`, converted from `requests` to the shared
`httpx.AsyncClient`, against an exchange-rate service on loopback (never the internet)."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from tests.tools.conftest import RatesService

URL = "/api/v1/tools/convert_currency"


async def test_converts_at_the_services_rate(
    client: AsyncClient, user_headers: dict[str, str], rates_service: RatesService
) -> None:
    response = await client.post(
        URL, json={"amount": "100.00", "source": "eur", "target": "USD"}, headers=user_headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "result": {
            "amount": "100.00",
            "source": "EUR",
            "target": "USD",
            "rate": "1.0823",
            "converted": "108.23",
            "rate_date": "2026-11-20",
        }
    }
    assert rates_service.requests == [{"base": "EUR", "symbols": "USD"}]


async def test_rounds_half_up_to_the_cent(
    client: AsyncClient, user_headers: dict[str, str], rates_service: RatesService
) -> None:
    response = await client.post(
        URL, json={"amount": "0.50", "source": "USD", "target": "EUR"}, headers=user_headers
    )
    # 0.50 * 0.92396 = 0.46198 -> 0.46
    assert response.json()["result"]["converted"] == "0.46"


async def test_an_unknown_currency_is_a_404(
    client: AsyncClient, user_headers: dict[str, str], rates_service: RatesService
) -> None:
    response = await client.post(
        URL, json={"amount": "1", "source": "EUR", "target": "XXX"}, headers=user_headers
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"] == "no exchange rate from EUR to XXX"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"amount": "1", "source": "EURO", "target": "USD"}, "three letters"),
        ({"amount": "1", "source": "EUR", "target": "eur"}, "the same"),
        ({"amount": "0", "source": "EUR", "target": "USD"}, None),
        ({"amount": "1.001", "source": "EUR", "target": "USD"}, None),
        ({"amount": "NaN", "source": "EUR", "target": "USD"}, None),
        ({"amount": "1", "source": "EUR", "target": "USD", "http": "x"}, None),
    ],
)
async def test_bad_input_is_a_422_and_never_calls_the_service(
    client: AsyncClient,
    user_headers: dict[str, str],
    rates_service: RatesService,
    body: dict[str, Any],
    reason: str | None,
) -> None:
    response = await client.post(URL, json=body, headers=user_headers)
    assert response.status_code == 422, response.text
    if reason:
        assert reason in response.json()["detail"]
    assert rates_service.requests == []


@pytest.mark.parametrize(("failure", "status"), [("status", 500), ("garbage", 200)])
async def test_a_bad_day_at_the_rate_service_is_a_503(
    client: AsyncClient,
    user_headers: dict[str, str],
    rates_service: RatesService,
    failure: str,
    status: int,
) -> None:
    if failure == "status":
        rates_service.fail_with = status
    else:
        rates_service.answer_garbage = True
    response = await client.post(
        URL, json={"amount": "1", "source": "EUR", "target": "USD"}, headers=user_headers
    )
    assert response.status_code == 503
    assert response.json()["code"] == "rates_unavailable"
    assert "maintenance" not in response.text


async def test_a_rate_service_that_is_down_is_a_503(
    client: AsyncClient, user_headers: dict[str, str], rates_down: None
) -> None:
    response = await client.post(
        URL, json={"amount": "1", "source": "EUR", "target": "USD"}, headers=user_headers
    )
    assert response.status_code == 503
    assert response.json() | {"request_id": None} == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "the exchange-rate service is unreachable",
        "code": "rates_unavailable",
        "request_id": None,
    }
