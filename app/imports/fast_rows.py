"""The cheap check of a CSV row, in a few microseconds instead of Pydantic's ~80 (almost all of
it email_validator).

A row whose every value is plainly valid becomes a `ParsedRow` here, holding exactly the values
`ImportRow` would produce: a plain-ASCII email that email_validator certainly accepts (its
normalized form, lower-cased, is the address lower-cased), a name of 1 to 100 characters, an
age of at most three ASCII digits up to 150, a balance matching `AMOUNT_PATTERN`, a password of
8 to 128 characters. Anything else, valid or not (a non-ASCII address, `"John" <j@x.io>`, an
age of "+3"), gets `None` and goes to `ImportRow` for the verdict and its messages. So a verdict
is always the model's: the fast path only ever says "certainly valid, and these are the
values", and tests/imports/test_fast_rows.py checks that against the model with hypothesis.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

import email_validator

from app.core.money import AMOUNT_PATTERN
from app.wallet.schemas import to_minor

# RFC 5322 atext, the characters email_validator's plain-ASCII dot-atom allows.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# A DNS label of letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# No re.IGNORECASE: with it, [A-Za-z] would also match the Kelvin sign and the long s.
PLAIN_EMAIL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+([A-Za-z]{{2,63}})")
PLAIN_EMAIL_MAX_LENGTH = 254  # email_validator's limit for the whole address
# Top-level domains of email_validator's special-use names (.arpa, .local, .test, ...): any
# address under one of them is left to email_validator.
RESERVED_TLDS = frozenset(
    name.rsplit(".", 1)[-1].lower() for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
)
PLAIN_AGE = re.compile(r"[0-9]{1,3}")
MAX_AGE = 150
PLAIN_AMOUNT = re.compile(AMOUNT_PATTERN)
NAME_MAX_LENGTH = 100
PASSWORD_LENGTHS = range(8, 129)


class ParsedRow(NamedTuple):
    """A valid row. A tuple in this order on purpose: it is the staging table's record as it is
    (app.imports.pg_copy), with `password` in the `hashed_password` column's place."""

    line: int
    email: str
    name: str
    age: int | None
    password: str | None
    balance_minor: int | None


def plain_email(value: str) -> str | None:
    """The normalized (lower-cased) address if `value` is a plain ASCII one that email_validator
    certainly accepts; None otherwise (ask email_validator). Hyphen pairs are left to it too:
    it refuses labels like "ab--c" unless they are Punycode ("xn--")."""
    match = PLAIN_EMAIL.fullmatch(value)
    if (
        match is None
        or len(value) > PLAIN_EMAIL_MAX_LENGTH
        or "--" in value
        or match[1].lower() in RESERVED_TLDS
    ):
        return None
    return value.lower()


class FastRows:
    """`row(record, line)` for records of one header's column order."""

    def __init__(self, header: list[str]) -> None:
        self.email = header.index("email")
        self.name = header.index("name")
        self.age = header.index("age") if "age" in header else None
        self.password = header.index("password") if "password" in header else None
        self.balance = header.index("balance") if "balance" in header else None

    def row(self, record: list[str], line: int) -> ParsedRow | None:
        """The row, if every value is plainly valid; None: ask `ImportRow`. The record has as
        many fields as the header."""
        email = plain_email(record[self.email].strip())
        if email is None:
            return None
        name = record[self.name].strip()
        if not 0 < len(name) <= NAME_MAX_LENGTH:
            return None
        age: int | None = None
        password: str | None = None
        balance: int | None = None
        if self.age is not None and (text := record[self.age].strip()):
            if PLAIN_AGE.fullmatch(text) is None:
                return None
            age = int(text)
            if age > MAX_AGE:
                return None
        if self.password is not None and (text := record[self.password].strip()):
            if len(text) not in PASSWORD_LENGTHS:
                return None
            password = text
        if self.balance is not None and (text := record[self.balance].strip()):
            if PLAIN_AMOUNT.fullmatch(text) is None:
                return None
            balance = to_minor(Decimal(text))
        return ParsedRow(line, email, name, age, password, balance)
