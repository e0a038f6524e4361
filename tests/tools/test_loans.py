"""The CPU-bound tool: an amortisation schedule in Decimal, as a plain function (properties
that must hold for any loan) and served (a sync tool, run in a worker thread)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from httpx import AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tools.loans import amortisation_schedule

URL = "/api/v1/tools/amortisation_schedule"

principals = st.decimals(min_value="0.01", max_value="1000000000", places=2)
rates = st.decimals(min_value="0", max_value="100", places=4)
terms = st.integers(min_value=1, max_value=600)


@settings(max_examples=150, deadline=None)
@given(principal=principals, rate=rates, months=terms)
def test_the_schedule_repays_the_loan_exactly(
    principal: Decimal, rate: Decimal, months: int
) -> None:
    schedule = amortisation_schedule(principal, rate, months)
    rows = schedule.installments
    assert 1 <= len(rows) <= months
    assert [row.number for row in rows] == list(range(1, len(rows) + 1))
    assert sum(row.principal for row in rows) == principal
    assert rows[-1].balance == 0
    assert all(row.balance >= 0 and row.principal >= 0 and row.interest >= 0 for row in rows)
    assert all(row.payment == row.principal + row.interest for row in rows)
    assert schedule.total_paid == sum(row.payment for row in rows)
    assert schedule.total_interest == schedule.total_paid - principal
    for value in (schedule.monthly_payment, schedule.total_paid, *(r.payment for r in rows)):
        assert value == value.quantize(Decimal("0.01"))
    if rate == 0:
        assert schedule.total_interest == 0


def test_a_known_loan() -> None:
    # 10 000 at 6 % a year over 12 months: the textbook payment is 860.66.
    schedule = amortisation_schedule(Decimal("10000.00"), Decimal("6"), 12)
    assert schedule.monthly_payment == Decimal("860.66")
    first = schedule.installments[0]
    assert (first.interest, first.principal, first.balance) == (
        Decimal("50.00"),
        Decimal("810.66"),
        Decimal("9189.34"),
    )
    # Eleven payments of 860.66; the last one, 860.70, clears what cent rounding left.
    assert [row.payment for row in schedule.installments[-2:]] == [
        Decimal("860.66"),
        Decimal("860.70"),
    ]
    assert schedule.total_interest == Decimal("327.96")


async def test_served_with_decimals_as_strings(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.post(
        URL, json={"principal": "1200.00", "annual_rate": 0, "months": 3}, headers=user_headers
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["monthly_payment"] == "400.00"
    assert result["total_interest"] == "0.00"
    assert [row["balance"] for row in result["installments"]] == ["800.00", "400.00", "0.00"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"principal": "0", "annual_rate": 5, "months": 12}, "principal"),
        ({"principal": "10.001", "annual_rate": 5, "months": 12}, "principal"),
        ({"principal": "1e12", "annual_rate": 5, "months": 12}, "principal"),
        ({"principal": "Infinity", "annual_rate": 5, "months": 12}, "principal"),
        ({"principal": "100", "annual_rate": -1, "months": 12}, "annual_rate"),
        ({"principal": "100", "annual_rate": 5, "months": 601}, "months"),
        ({"principal": "100", "annual_rate": 5, "months": 1.5}, "months"),
        ({"principal": "100", "annual_rate": 5}, "months"),
    ],
)
async def test_bad_loans_are_a_422(
    client: AsyncClient, user_headers: dict[str, str], body: dict[str, object], field: str
) -> None:
    response = await client.post(URL, json=body, headers=user_headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", field]
