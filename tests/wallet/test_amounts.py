"""Amounts: a plain decimal string or a number, nothing else Python's Decimal would take
("1e2", "1_000", full-width digits, spaces, signs). The documented pattern and the validator
accept exactly the same strings, property-tested both ways."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from httpx import AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.core.money import AMOUNT_PATTERN
from app.wallet.schemas import Amount
from tests.wallet.conftest import PAYMENTS, TOP_UPS, NewMember, assert_problem, card

AMOUNTS = TypeAdapter(Amount)
# JSON Schema's `$` (ECMA-262) does not match before a final newline, Python's does: compare
# whole strings against the pattern's body.
DOCUMENTED = re.compile(AMOUNT_PATTERN.removeprefix("^").removesuffix("$"))
REFUSED = [
    "1e2",
    "1_000",
    "\uff11.\uff10\uff10",
    " 1.00",
    "1.00 ",
    "+1",
    "-1",
    "0",
    "0.00",
    "1.005",
    "1000000.01",
    "5.",
    ".5",
    "NaN",
    "Infinity",
    "0x10",
    "",
]


def accepted(value: object) -> bool:
    try:
        AMOUNTS.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("value", REFUSED)
def test_what_decimal_would_parse_but_the_contract_refuses(value: str) -> None:
    assert not accepted(value)
    assert not DOCUMENTED.fullmatch(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", "12.50"),
        ("1", "1"),
        ("0.01", "0.01"),
        ("1000000.00", "1000000.00"),
        (12.5, "12.5"),
        (3, "3"),
    ],
)
def test_plain_amounts_are_accepted(value: object, expected: str) -> None:
    assert AMOUNTS.validate_python(value) == Decimal(expected)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(AMOUNT_PATTERN, fullmatch=True))
def test_every_string_the_schema_documents_is_accepted(value: str) -> None:
    assert AMOUNTS.validate_python(value) == Decimal(value)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet="0123456789.eE_+- \u0660\uff10\uff11", max_size=12),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
    )
)
def test_a_string_is_accepted_only_if_the_schema_documents_it(value: str) -> None:
    assert accepted(value) == bool(DOCUMENTED.fullmatch(value)), value


@settings(max_examples=200, deadline=None)
@given(st.booleans() | st.none() | st.lists(st.integers(), max_size=2))
def test_anything_but_a_string_or_a_number_is_refused(value: object) -> None:
    assert not accepted(value)


@pytest.mark.parametrize("amount", ["1e2", "1_000", "\uff11.\uff10\uff10", " 1.00"])
async def test_the_api_refuses_them_with_a_422(
    client: AsyncClient, member: NewMember, amount: str
) -> None:
    alice, bob = await member("5.00"), await member()
    paid = await client.post(
        PAYMENTS, json={"payee_id": bob.id, "amount": amount}, headers=alice.headers
    )
    assert_problem(paid, 422, "validation_error")
    topped_up = await client.post(
        TOP_UPS, json={"amount": amount, "card": card()}, headers=alice.headers
    )
    assert_problem(topped_up, 422, "validation_error")
