"""Payment cards: pure validation, no FastAPI, no I/O.

The rules of the API: a number is digits only once spaces and dashes are removed, 12 to 19 of
them, Luhn-valid; an expiry is `MM/YY`, a real month not in the past; a CVV is 3 or 4 digits.

The full number and the CVV are secrets (PCI DSS): they live in `SecretStr`, so `repr()`, `str()`
and `model_dump()` print `**********`; no error message repeats them; and `Card` refuses to echo
its input in a `ValidationError` (`hide_input_in_errors`). Only `brand` and `last4` may be kept.

Reusable on their own: `normalise_number`, `luhn_valid`, `luhn_check_digit`, `detect_brand`,
`parse_expiry`, `check_expiry`, `check_cvv`. Each raises `InvalidCard` (a `ValueError`, so
Pydantic turns it into a 422) with a message that never contains the input.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

MIN_DIGITS = 12
MAX_DIGITS = 19
# Longest raw input looked at: 19 digits plus generous separators. Anything longer is refused
# before any work is done on it.
MAX_RAW_LENGTH = 40

_SEPARATORS = re.compile(r"[ -]")
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])/(\d{2})")
_CVV = re.compile(r"\d{3,4}")


class InvalidCard(ValueError):
    """A card field that breaks the rules. The message never includes the value."""


class CardBrand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    DINERS = "diners"
    JCB = "jcb"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    UNKNOWN = "unknown"


# (first digits as an inclusive numeric range, length of that prefix, brand), most specific
# first: 622126-622925 is Discover although 62 is UnionPay, 2221-2720 Mastercard.
_BRAND_RANGES: tuple[tuple[int, int, int, CardBrand], ...] = (
    (622126, 622925, 6, CardBrand.DISCOVER),
    (2221, 2720, 4, CardBrand.MASTERCARD),
    (3528, 3589, 4, CardBrand.JCB),
    (6011, 6011, 4, CardBrand.DISCOVER),
    (300, 305, 3, CardBrand.DINERS),
    (644, 649, 3, CardBrand.DISCOVER),
    (34, 34, 2, CardBrand.AMEX),
    (37, 37, 2, CardBrand.AMEX),
    (36, 36, 2, CardBrand.DINERS),
    (38, 39, 2, CardBrand.DINERS),
    (51, 55, 2, CardBrand.MASTERCARD),
    (65, 65, 2, CardBrand.DISCOVER),
    (62, 62, 2, CardBrand.UNIONPAY),
    (50, 50, 2, CardBrand.MAESTRO),
    (56, 69, 2, CardBrand.MAESTRO),
    (4, 4, 1, CardBrand.VISA),
)


def normalise_number(raw: str) -> str:
    """The digits of a card number: spaces and dashes removed, 12 to 19 digits, Luhn-valid."""
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidCard("card number is too long")
    digits = _SEPARATORS.sub("", raw)
    # isascii(): str.isdigit() is also true for "٣" and "²", which int() may not even parse.
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidCard("card number may contain only digits, spaces and dashes")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InvalidCard(f"card number must have {MIN_DIGITS} to {MAX_DIGITS} digits")
    if not luhn_valid(digits):
        raise InvalidCard("card number is not valid (check digit)")
    return digits


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    total = 0
    double = double_first
    for char in reversed(digits):
        value = ord(char) - 48
        if double:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
        double = not double
    return total


def luhn_valid(digits: str) -> bool:
    """True when the last digit is the Luhn check digit of the others (digits only)."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    return _luhn_sum(digits, double_first=False) % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` Luhn-valid."""
    if not (partial.isascii() and partial.isdigit()):
        raise InvalidCard("a card number prefix is digits only")
    return str(-_luhn_sum(partial, double_first=True) % 10)


def detect_brand(digits: str) -> CardBrand:
    """The card network, from the leading digits (the issuer identification number)."""
    for low, high, length, brand in _BRAND_RANGES:
        if len(digits) >= length and low <= int(digits[:length]) <= high:
            return brand
    return CardBrand.UNKNOWN


def parse_expiry(value: str) -> tuple[int, int]:
    """`MM/YY` -> (year, month), e.g. "04/29" -> (2029, 4)."""
    match = _EXPIRY.fullmatch(value)
    if match is None:
        raise InvalidCard("expiry must be MM/YY with a month from 01 to 12")
    return 2000 + int(match.group(2)), int(match.group(1))


def check_expiry(value: str, today: date) -> tuple[int, int]:
    """(year, month) of an expiry that is still valid on `today`: a card works through the
    last day of its expiry month."""
    year, month = parse_expiry(value)
    if (year, month) < (today.year, today.month):
        raise InvalidCard("card has expired")
    return year, month


def check_cvv(value: str) -> str:
    if not _CVV.fullmatch(value):
        raise InvalidCard("cvv must be 3 or 4 digits")
    return value


def today_utc() -> date:
    return datetime.now(UTC).date()


class Card(BaseModel):
    """A validated card, as a client sends it: `{"number", "expiry": "MM/YY", "cvv"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    number: SecretStr
    expiry: str
    cvv: SecretStr

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            raise InvalidCard("card number must be a string")
        return normalise_number(value)

    @field_validator("expiry", mode="before")
    @classmethod
    def _expiry(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidCard("expiry must be a string MM/YY")
        check_expiry(value, today_utc())
        return value

    @field_validator("cvv", mode="before")
    @classmethod
    def _cvv(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            raise InvalidCard("cvv must be a string of 3 or 4 digits")
        return check_cvv(value)

    @property
    def brand(self) -> CardBrand:
        return detect_brand(self.number.get_secret_value())

    @property
    def last4(self) -> str:
        return self.number.get_secret_value()[-4:]

    @property
    def expiry_year(self) -> int:
        return parse_expiry(self.expiry)[0]

    @property
    def expiry_month(self) -> int:
        return parse_expiry(self.expiry)[1]
