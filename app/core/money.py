"""Money: integer minor units in the database, a two-decimal string in JSON."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

MINOR_UNITS_PER_MAJOR = 100

# An amount as a string: plain ASCII digits with an optional point and at most two decimals,
# more than 0 and at most 1000000.00. No sign, exponent, underscore, space or non-ASCII digit,
# which Python's Decimal (and so Pydantic) would otherwise accept ("1e2", "1_000", " 1.00",
# full-width digits). The same expression is the documented `pattern`, so the schema and the
# validator accept exactly the same strings.
AMOUNT_PATTERN = (
    r"^(?:0*[1-9][0-9]{0,5}(?:\.[0-9]{1,2})?|0+\.(?:0[1-9]|[1-9][0-9]?)|0*1000000(?:\.00?)?)$"
)
_AMOUNT = re.compile(AMOUNT_PATTERN)


def plain_amount(value: Any) -> Any:
    """Before Decimal parsing: a string must match AMOUNT_PATTERN; a JSON number (not a bool)
    passes on to the numeric constraints."""
    if isinstance(value, str):
        if not _AMOUNT.fullmatch(value):
            raise ValueError(
                "an amount is a plain decimal (digits, an optional point and at most two "
                "decimals), more than 0 and at most 1000000.00"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError("an amount is a decimal string or a number")
    return value


def format_minor(minor: int) -> str:
    """1250 -> "12.50"."""
    return f"{Decimal(minor) / MINOR_UNITS_PER_MAJOR:.2f}"
