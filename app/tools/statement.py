"""An account statement: the caller's wallet ledger over a period, month by month.

Slow in proportion to the history it reads (every transaction of the period is streamed from
the database in batches), so it is exposed as a long-running tool: the request answers 202
with a job, and the statement is the job's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from app.users.models import User
from app.wallet.models import Transaction, TransactionKind

MAX_PERIOD_DAYS = 3660  # ten years
BATCH = 1000
DEBITS = frozenset({TransactionKind.PAYMENT_SENT.value})


@dataclass
class MonthSummary:
    month: str  # YYYY-MM
    transactions: int
    credits: Decimal
    debits: Decimal
    closing_balance: Decimal


@dataclass
class Statement:
    user_id: int
    currency: str
    start: date
    end: date
    opening_balance: Decimal
    closing_balance: Decimal
    credits: Decimal
    debits: Decimal
    transactions: int
    months: list[MonthSummary]


def _money(minor: int) -> Decimal:
    return (Decimal(minor) / 100).quantize(Decimal("0.01"))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def check_period(start: date, end: date) -> None:
    """Refuse a period no statement covers. Exposed as the tool's `check`, so a bad period is
    a 422 before any job is queued."""
    if end < start:
        raise ValueError("end is before start")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ValueError(f"a statement covers at most {MAX_PERIOD_DAYS} days")
    if end >= date.max:
        # The period ends at midnight after `end`, which must exist.
        raise ValueError(f"end must be before {date.max.isoformat()}")


async def account_statement(
    user: User, session: AsyncSession, settings: Settings, start: date, end: date
) -> Statement:
    """The caller's statement for a period: opening and closing balance, money in and out,
    and one line per month.

    Args:
        start: The first day of the period (UTC), included.
        end: The last day of the period (UTC), included.

    Returns:
        Balances and totals of the period, with a summary per calendar month.
    """
    check_period(start, end)
    since, until = _midnight(start), _midnight(end + timedelta(days=1))

    before = await session.scalar(
        select(Transaction.balance_after_minor)
        .where(Transaction.user_id == user.id, Transaction.created_at < since)
        .order_by(Transaction.created_at.desc(), Transaction.id.desc())
        .limit(1)
    )
    opening = balance = before or 0
    credits = debits = count = 0
    months: dict[str, MonthSummary] = {}
    rows = await session.stream_scalars(
        select(Transaction)
        .where(
            Transaction.user_id == user.id,
            Transaction.created_at >= since,
            Transaction.created_at < until,
        )
        .order_by(Transaction.created_at, Transaction.id)
        .execution_options(yield_per=BATCH)
    )
    async for row in rows:
        key = row.created_at.strftime("%Y-%m")
        month = months.get(key)
        if month is None:
            month = months[key] = MonthSummary(key, 0, Decimal("0.00"), Decimal("0.00"), _money(0))
        month.transactions += 1
        if row.kind in DEBITS:
            debits += row.amount_minor
            month.debits += _money(row.amount_minor)
        else:
            credits += row.amount_minor
            month.credits += _money(row.amount_minor)
        balance = row.balance_after_minor
        month.closing_balance = _money(balance)
        count += 1
    await session.commit()  # a read: end the transaction, hand the connection back
    return Statement(
        user_id=user.id,
        currency=settings.currency,
        start=start,
        end=end,
        opening_balance=_money(opening),
        closing_balance=_money(balance),
        credits=_money(credits),
        debits=_money(debits),
        transactions=count,
        months=list(months.values()),
    )
