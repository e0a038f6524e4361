"""Loan arithmetic in Decimal: an amortisation schedule, cent by cent.

CPU work only: no I/O, no framework. Exposed as a sync tool, so it runs in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Annotated

from pydantic import Field

CENT = Decimal("0.01")
MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class Installment:
    number: int
    payment: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Schedule:
    monthly_payment: Decimal
    total_paid: Decimal
    total_interest: Decimal
    installments: list[Installment]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def amortisation_schedule(
    principal: Annotated[Decimal, Field(gt=0, le=1_000_000_000, decimal_places=2)],
    annual_rate: Annotated[Decimal, Field(ge=0, le=100, decimal_places=4)],
    months: Annotated[int, Field(ge=1, le=600)],
) -> Schedule:
    """Monthly payments of a fixed-rate loan, and how each splits into principal and interest.

    Every amount is rounded to the cent (half up); the last payment absorbs the rounding, so
    the principal parts add up to the loan exactly and the balance ends at zero.

    Args:
        principal: The amount borrowed, at most two decimals.
        annual_rate: The nominal yearly interest rate in percent (5 means 5 %).
        months: The number of monthly payments, 1 to 600.

    Returns:
        The level monthly payment, the totals, and one row per month.
    """
    if principal <= 0 or months < 1 or annual_rate < 0:
        raise ValueError("principal and months must be positive, the rate not negative")
    with localcontext() as ctx:
        ctx.prec = 40  # (1 + r)^600 needs the digits
        rate = annual_rate / 100 / MONTHS_PER_YEAR
        if rate == 0:
            payment = _cents(principal / months)
        else:
            payment = _cents(principal * rate / (1 - (1 + rate) ** -months))
        balance = _cents(principal)
        rows: list[Installment] = []
        for number in range(1, months + 1):
            interest = _cents(balance * rate)
            part = payment - interest
            if number == months or part > balance:
                part = balance  # the last payment clears what rounding left
            balance -= part
            rows.append(Installment(number, part + interest, part, interest, balance))
            if balance == 0:
                break
    total_paid = sum((row.payment for row in rows), Decimal("0.00"))
    return Schedule(
        monthly_payment=payment,
        total_paid=total_paid,
        total_interest=total_paid - principal,
        installments=rows,
    )
