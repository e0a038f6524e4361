"""Card validation (app/wallet/cards.py): properties checked with hypothesis, plus the
known test numbers of the networks."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app.wallet.cards import (
    Card,
    CardBrand,
    InvalidCard,
    check_cvv,
    check_expiry,
    detect_brand,
    luhn_check_digit,
    luhn_valid,
    normalise_number,
    parse_expiry,
)
from app.wallet.schemas import TopUpCreate

NUMBER_ERRORS = {
    "card number is too long",
    "card number may contain only digits, spaces and dashes",
    "card number must have 12 to 19 digits",
    "card number is not valid (check digit)",
}

digits = st.text(alphabet="0123456789", min_size=11, max_size=18)


def valid_number(prefix: str) -> str:
    return prefix + luhn_check_digit(prefix)


@given(digits)
def test_appending_the_check_digit_makes_any_number_luhn_valid(prefix: str) -> None:
    number = valid_number(prefix)
    assert luhn_valid(number)
    assert normalise_number(number) == number


@given(digits, st.data())
def test_changing_any_single_digit_breaks_luhn(prefix: str, data: st.DataObject) -> None:
    number = valid_number(prefix)
    position = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    changed = number[:position] + replacement + number[position + 1 :]
    assert not luhn_valid(changed)
    with pytest.raises(InvalidCard, match="check digit"):
        normalise_number(changed)


@given(digits, st.data())
def test_swapping_adjacent_digits_is_caught_unless_they_are_09_or_90(
    prefix: str, data: st.DataObject
) -> None:
    number = valid_number(prefix)
    i = data.draw(st.integers(0, len(number) - 2))
    a, b = number[i], number[i + 1]
    swapped = number[:i] + b + a + number[i + 2 :]
    if a == b or {a, b} == {"0", "9"}:
        return  # the one transposition Luhn cannot see, and no change at all
    assert not luhn_valid(swapped)


@given(digits, st.lists(st.sampled_from([" ", "-"]), max_size=6), st.randoms())
def test_spaces_and_dashes_are_ignored(prefix: str, separators: list[str], rng: object) -> None:
    number = valid_number(prefix)
    chars = list(number)
    for separator in separators:
        chars.insert(len(chars) // 2, separator)
    assert normalise_number("".join(chars)) == number


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
@example("0" * 11)
@example("0" * 20)
def test_only_12_to_19_digits_are_accepted(number: str) -> None:
    if 12 <= len(number) <= 19 and luhn_valid(number):
        assert normalise_number(number) == number
    else:
        with pytest.raises(InvalidCard):
            normalise_number(number)


@given(st.text(max_size=45))
@example("4242 4242 4242 424²")
@example("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢")
def test_any_string_is_either_a_clean_number_or_an_invalid_card(raw: str) -> None:
    message = None
    try:
        number = normalise_number(raw)
    except InvalidCard as error:
        message = str(error)
    if message is not None:
        # One of a few fixed messages: nothing of the input is ever repeated.
        assert message in NUMBER_ERRORS
    else:
        assert number.isascii()
        assert number.isdigit()
        assert luhn_valid(number)
        assert 12 <= len(number) <= 19


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", CardBrand.VISA),
        ("4000056655665556", CardBrand.VISA),
        ("5555555555554444", CardBrand.MASTERCARD),
        ("2223003122003222", CardBrand.MASTERCARD),
        ("378282246310005", CardBrand.AMEX),
        ("371449635398431", CardBrand.AMEX),
        ("6011111111111117", CardBrand.DISCOVER),
        ("6445644564456445", CardBrand.DISCOVER),
        ("6221260000000000", CardBrand.DISCOVER),
        ("3056930009020004", CardBrand.DINERS),
        ("36227206271667", CardBrand.DINERS),
        ("3566002020360505", CardBrand.JCB),
        ("6200000000000005", CardBrand.UNIONPAY),
        ("6759649826438453", CardBrand.MAESTRO),
        ("9999999999999995", CardBrand.UNKNOWN),
    ],
)
def test_brand_is_detected_from_the_leading_digits(number: str, brand: CardBrand) -> None:
    assert luhn_valid(number)
    assert detect_brand(number) is brand
    assert Card(number=number, expiry="12/39", cvv="1234").brand is brand


@given(st.integers(1, 12), st.integers(0, 99), st.dates(date(2000, 1, 1), date(2099, 12, 31)))
def test_an_expiry_is_valid_through_the_end_of_its_month(month: int, yy: int, today: date) -> None:
    value = f"{month:02d}/{yy:02d}"
    assert parse_expiry(value) == (2000 + yy, month)
    if (2000 + yy, month) >= (today.year, today.month):
        assert check_expiry(value, today) == (2000 + yy, month)
    else:
        with pytest.raises(InvalidCard, match="expired"):
            check_expiry(value, today)


@given(st.text(max_size=8))
@example("00/30")
@example("13/30")
@example("1/30")
@example("01/2030")
@example(" 01/30")
def test_an_expiry_that_is_not_mm_yy_is_refused(value: str) -> None:
    shaped = (
        len(value) == 5
        and value[2] == "/"
        and value[:2].isascii()
        and value[:2].isdigit()
        and value[3:].isascii()
        and value[3:].isdigit()
        and 1 <= int(value[:2]) <= 12
    )
    if shaped:
        assert parse_expiry(value)
    else:
        with pytest.raises(InvalidCard):
            parse_expiry(value)


@given(st.text(max_size=6))
@example("123")
@example("1234")
@example("12345")
def test_a_cvv_is_three_or_four_ascii_digits(value: str) -> None:
    if len(value) in (3, 4) and value.isascii() and value.isdigit():
        assert check_cvv(value) == value
    else:
        with pytest.raises(InvalidCard):
            check_cvv(value)


def test_a_card_never_shows_its_number_or_cvv() -> None:
    card = Card(number="4242-4242-4242-4242", expiry="12/39", cvv="987")
    assert card.number.get_secret_value() == "4242424242424242"
    assert (card.brand, card.last4, card.expiry_year, card.expiry_month) == (
        CardBrand.VISA,
        "4242",
        2039,
        12,
    )
    for text in (repr(card), str(card), str(card.model_dump()), card.model_dump_json()):
        assert "4242424242424242" not in text
        assert "987" not in text


def test_a_validation_error_does_not_repeat_the_number() -> None:
    class Holder(BaseModel):
        card: Card

    with pytest.raises(ValidationError) as caught:
        Card(number="4242424242424241", expiry="12/39", cvv="123")
    assert "4242424242424241" not in str(caught.value)
    assert "4242424242424241" not in repr(caught.value)

    # Pydantic takes `hide_input_in_errors` from the outermost model: a plain holder of a Card
    # would print the number, so the request model that holds one sets it too.
    bad = {"number": "4242424242424241", "expiry": "12/39", "cvv": "1"}
    with pytest.raises(ValidationError) as plain:
        Holder.model_validate({"card": bad})
    assert "4242424242424241" in str(plain.value)
    with pytest.raises(ValidationError) as nested:
        TopUpCreate.model_validate({"amount": "1", "card": bad})
    assert "4242424242424241" not in str(nested.value)
