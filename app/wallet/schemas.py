"""Wallet: Pydantic models in and out.

Money comes in as a JSON string or number and becomes a `Decimal` (never a float: 0.1 + 0.2 is
not 0.3 in binary), is stored as integer minor units, and goes out as a two-decimal string.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from app.core.money import AMOUNT_PATTERN, MINOR_UNITS_PER_MAJOR, plain_amount
from app.wallet.cards import Card

MAX_AMOUNT = Decimal("1000000.00")

Amount = Annotated[
    Decimal,
    BeforeValidator(plain_amount),
    Field(
        gt=0,
        le=MAX_AMOUNT,
        decimal_places=2,
        allow_inf_nan=False,
        description="A positive amount with at most two decimals, at most 1000000.00: a "
        "string of plain digits with an optional point, or a number.",
    ),
    # What plain_amount and the constraints accept, exactly (Pydantic's own schema for a
    # Decimal allows any string).
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 1000000,
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": AMOUNT_PATTERN},
            ],
            "title": "Amount",
            "examples": ["12.50"],
        },
        mode="validation",
    ),
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def to_minor(amount: Decimal) -> int:
    """Decimal("12.5") -> 1250. Exact: `Amount` allows at most two decimals."""
    return int((amount * MINOR_UNITS_PER_MAJOR).to_integral_value())


class TopUpCreate(BaseModel):
    # hide_input_in_errors here as well as on Card: a nested model's setting does not reach
    # the error messages of the model that contains it, and this one contains a card number.
    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        json_schema_extra={
            "examples": [
                {
                    "amount": "25.00",
                    "card": {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvv": "123"},
                }
            ]
        },
    )

    amount: Amount
    card: Card

    @property
    def amount_minor(self) -> int:
        return to_minor(self.amount)

    def fingerprint_data(self) -> dict[str, Any]:
        """What identifies this request for Idempotency-Key: everything sent, the card too (the
        fingerprint is a keyed hash, so the number cannot be read back from it)."""
        return {
            "amount": str(self.amount_minor),
            "card": {
                "number": self.card.number.get_secret_value(),
                "expiry": self.card.expiry,
                "cvv": self.card.cvv.get_secret_value(),
            },
        }


class PaymentCreate(BaseModel):
    """Pay another user, named by id or by email (exactly one of the two)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"payee_email": "bob@example.com", "amount": "12.50", "description": "lunch"},
                {"payee_id": 42, "amount": 3},
            ]
        },
    )

    payee_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    payee_email: Annotated[EmailStr, Field(max_length=320)] | None = None
    amount: Amount
    description: Description | None = None

    @model_validator(mode="after")
    def _one_payee(self) -> PaymentCreate:
        if (self.payee_id is None) == (self.payee_email is None):
            raise ValueError("give exactly one of payee_id and payee_email")
        return self

    @property
    def amount_minor(self) -> int:
        return to_minor(self.amount)

    def fingerprint_data(self) -> dict[str, Any]:
        return {
            "payee_id": self.payee_id,
            "payee_email": self.payee_email.lower() if self.payee_email else None,
            "amount": str(self.amount_minor),
            "description": self.description,
        }


class WalletRead(BaseModel):
    balance: str = Field(examples=["120.00"])
    currency: str = Field(examples=["USD"])


TransactionKindName = Literal["top_up", "payment_sent", "payment_received", "import_credit"]


class TransactionRead(BaseModel):
    id: uuid.UUID
    kind: TransactionKindName
    amount: str = Field(examples=["12.50"])
    balance_after: str = Field(examples=["107.50"])
    counterparty_id: int | None
    description: str | None
    card_brand: str | None = Field(examples=["visa"])
    card_last4: str | None = Field(examples=["4242"])
    created_at: datetime
