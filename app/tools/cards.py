"""Card checks for clients that want to validate a card before paying with it.

The rules are the wallet's own (`app.wallet.cards`): the same `Card` model validates here and
in POST /wallet/top-ups, so a card this tool accepts is one a top-up accepts. Nothing is
charged, stored or logged, and only the brand and the last four digits come back.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.wallet.cards import Card, CardBrand, detect_brand, luhn_check_digit, normalise_number


@dataclass(frozen=True)
class CardCheck:
    brand: CardBrand
    last4: str
    expiry_year: int
    expiry_month: int


@dataclass(frozen=True)
class CardNumberCheck:
    brand: CardBrand
    last4: str
    digits: int


def check_card(card: Card) -> CardCheck:
    """Check a whole card: number (Luhn), expiry (not past) and CVV, without charging it.

    Args:
        card: The card as a top-up takes it: number, expiry MM/YY, cvv.

    Returns:
        The card's brand, last four digits and expiry; never the number or the CVV.
    """
    return CardCheck(card.brand, card.last4, card.expiry_year, card.expiry_month)


def check_card_number(number: str) -> CardNumberCheck:
    """Check a card number alone: 12 to 19 digits (spaces and dashes allowed), Luhn-valid.

    Args:
        number: The card number as printed on the card.

    Raises:
        InvalidCard: The number breaks a rule (the message says which, never the number).
    """
    digits = normalise_number(number)
    return CardNumberCheck(detect_brand(digits), digits[-4:], len(digits))


def card_check_digit(partial_number: str) -> str:
    """The Luhn check digit that completes a card number (test numbers, issuer tooling).

    Args:
        partial_number: The digits of the number without its last (check) digit.
    """
    if not 11 <= len(partial_number) <= 18:
        raise ValueError("a partial card number has 11 to 18 digits")
    return luhn_check_digit(partial_number)
