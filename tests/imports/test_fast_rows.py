"""The cheap row check (app/imports/fast_rows.py) against the model it stands in for: whenever
the fast path accepts a value or a row, `ImportRow` (Pydantic, email_validator) accepts it too
and produces the same values. Property-tested with hypothesis, plus tricky addresses by hand;
and the plain rows of a real file do take the fast path (else the import is slow again)."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.imports.csv_rows import UsersCsvReader, model_row
from app.imports.fast_rows import PLAIN_EMAIL, FastRows, ParsedRow, plain_email
from app.imports.schemas import OPTIONAL_COLUMNS
from app.users.schemas import Email

EMAILS = TypeAdapter(Email)


def model_email(value: str) -> str | None:
    try:
        return EMAILS.validate_python(value)
    except ValidationError:
        return None


def assert_same_verdict(value: str) -> None:
    fast = plain_email(value)
    if fast is not None:
        assert model_email(value) == fast, value


# Addresses the fast path must take (and get right): the plain ones a real file is made of.
PLAIN = [
    "user0000001@example.com",
    "Ada@Example.com",
    "first.last@sub.example.org",
    "x+tag@example.co.uk",
    "o'brien@example.ie",
    "!#$%&'*+/=?^_`{|}~-@example.com",
    "a@b.co",
    "a@1.example",
    "a@ab-cd.com",
    "POSTMASTER@EXAMPLE.COM",
    "x" * 64 + "@example.com",
    # At the limits: a local part over RFC 5321's 64 (email_validator checks it only when
    # strict), 254 characters in all, a 63-character label and top-level domain.
    "x" * 65 + "@example.com",
    "x" * 200 + "@" + "d" * 49 + ".com",
    "a@" + "d" * 63 + ".com",
    "a@example." + "c" * 63,
]
# Anything else: valid or not, the fast path leaves it to email_validator.
TRICKY = [
    "",
    "@",
    "a@",
    "@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-example.com",
    "a@example-.com",
    "a@example..com",
    "a@example.com.",
    "a@ab--cd.com",  # R-LDH label: refused
    "a@a--b.com",  # hyphens elsewhere: accepted, by email_validator
    "a--b@example.com",
    "a@xn--bcher-kva.example",  # Punycode
    "a@example.xn--p1ai",
    "a@example.c",
    "a@example.123",
    "a@123",
    "a@localhost",
    "a@example.local",
    "a@sub.example.test",
    "a@home.arpa",
    "a@example.invalid",
    "a@example.onion",
    "a@example.Local",
    "a@[127.0.0.1]",
    '"quoted"@example.com',
    '"a b"@example.com',
    "John Smith <john@example.com>",
    "<john@example.com>",
    "a @example.com",
    "a@ example.com",
    "a@exam_ple.com",
    "a@example.com\n",
    "a\n@example.com",
    "\u01c5@example.com",
    "\u00fc@example.com",
    "a@b\u00fccher.de",
    "a@\u212aelvin.com",  # KELVIN SIGN: a K only under re.IGNORECASE
    "a@example.\u017fe",  # LATIN SMALL LETTER LONG S
    "a@example.\uff43om",  # full-width c
    "x" * 200 + "@" + "d" * 50 + ".com",  # 255 characters: over
    "a@" + "d" * 64 + ".com",
    "a@example." + "c" * 64,
    "a@@example.com",
    "a(comment)@example.com",
    "a\\b@example.com",
    "a,b@example.com",
    "a;b@example.com",
]


@pytest.mark.parametrize("value", PLAIN)
def test_plain_addresses_take_the_fast_path(value: str) -> None:
    assert plain_email(value) == value.lower()
    assert model_email(value) == value.lower()


@pytest.mark.parametrize("value", PLAIN + TRICKY)
def test_tricky_addresses_get_the_models_verdict(value: str) -> None:
    assert_same_verdict(value)


def test_the_fast_path_leaves_the_tricky_ones_alone() -> None:
    # Not a correctness requirement, but this list is there to exercise the model side.
    assert [value for value in TRICKY if plain_email(value) is not None] == []


@settings(max_examples=400, deadline=None)
@given(st.from_regex(PLAIN_EMAIL, fullmatch=True))
def test_whatever_the_pattern_admits_the_model_accepts_alike(value: str) -> None:
    assert_same_verdict(value)


@settings(max_examples=500, deadline=None)
@given(st.emails())
def test_generated_addresses(value: str) -> None:
    assert_same_verdict(value)
    assert_same_verdict(value.upper())


EMAILISH = (
    string.ascii_letters
    + string.digits
    + "@.-_+'!#$%&*/=?^`{|}~ \"<>()[]\\,;:"
    + ("\u00fc\u212a\u017f\uff0e\u3002\u0130\n\t")
)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=EMAILISH, max_size=40))
@example("a@b.com")
def test_address_like_strings(value: str) -> None:
    assert_same_verdict(value)


# --- whole rows ------------------------------------------------------------------------------

SPACE = st.sampled_from(["", " ", "\t", "\u00a0", "\u3000", "\u200b", "\x1c", "\x85"])
FIELD = {
    "email": st.one_of(st.emails(), st.from_regex(PLAIN_EMAIL, fullmatch=True)),
    "name": st.one_of(st.text(max_size=110), st.text(min_size=99, max_size=102)),
    "age": st.one_of(
        st.from_regex(r"[0-9]{1,4}", fullmatch=True),
        st.text(alphabet="0123456789+-_. \u0661\uff11", max_size=5),
    ),
    "password": st.one_of(st.text(min_size=6, max_size=10), st.text(min_size=126, max_size=130)),
    "balance": st.one_of(
        st.from_regex(r"[0-9]{1,8}(\.[0-9]{0,3})?", fullmatch=True),
        st.text(alphabet="0123456789.,e+-_ ", max_size=10),
    ),
}


@st.composite
def header_and_record(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    optional = draw(st.lists(st.sampled_from(OPTIONAL_COLUMNS), unique=True))
    header = draw(st.permutations(["email", "name", *optional]))
    record = []
    for name in header:
        value = draw(st.one_of(st.just(""), FIELD[name]))
        record.append(draw(SPACE) + value + draw(SPACE))
    return header, record


@settings(max_examples=400, deadline=None)
@given(header_and_record())
def test_a_row_the_fast_path_takes_is_the_models_row(
    header_record: tuple[list[str], list[str]],
) -> None:
    header, record = header_record
    fast = FastRows(header).row(record, 7)
    if fast is not None:
        assert model_row(header, record, 7) == fast


def test_a_plain_file_takes_the_fast_path_throughout(monkeypatch: pytest.MonkeyPatch) -> None:
    import app.imports.csv_rows as csv_rows

    def no_model(*args: object) -> None:
        raise AssertionError(f"the model was asked about {args}")

    monkeypatch.setattr(csv_rows, "model_row", no_model)
    data = b"email,name,age,balance,password\r\n" + b"".join(
        f"User{i}@Example.com, User {i} ,{i % 151},{'' if i % 3 else f'{i}.5'},\r\n".encode()
        for i in range(3000)
    )
    rows = [row for batch in UsersCsvReader([data]).batches() for row in batch.rows]
    assert len(rows) == 3000
    assert rows[3] == ParsedRow(5, "user3@example.com", "User 3", 3, None, 350)
    assert rows[4] == ParsedRow(6, "user4@example.com", "User 4", 4, None, None)
