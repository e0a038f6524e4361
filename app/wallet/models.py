"""Wallet tables: the ledger (`transactions`) and the idempotency records that guard it.

Balances live on `users.balance_minor`; every change to one is a ledger row written in the same
database transaction, whose `balance_after_minor` is the balance the conditional UPDATE returned.
Amounts are integer minor units (cents): never floats, never `Numeric` (SQLite stores it as REAL).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, utcnow
from app.users.models import BigIntId


class TransactionKind(StrEnum):
    TOP_UP = "top_up"
    PAYMENT_SENT = "payment_sent"
    PAYMENT_RECEIVED = "payment_received"
    IMPORT_CREDIT = "import_credit"


_KINDS = ", ".join(f"'{kind.value}'" for kind in TransactionKind)


class Transaction(Base):
    """One side of one balance change. A payment is two rows sharing a `transfer_id`."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_KINDS})", name="kind_known"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("balance_after_minor >= 0", name="balance_after_not_negative"),
        # Newest first, per user: the listing's seek index.
        Index("ix_transactions_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    counterparty_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # Both sides of one payment carry the same transfer id (None for top-ups and credits).
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    description: Mapped[str | None] = mapped_column(String(200))
    # What may be kept of a card: its brand and last four digits, never the number or the CVV.
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # The gateway's id of the charge behind a top-up: what reconciliation matches against.
    gateway_reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """An `Idempotency-Key` a user sent, the fingerprint of the request it came with, and, once
    the request is decided, the response to replay. `response_status` NULL: still in flight.

    The record is completed in the same database transaction as the money it guards, so a key
    is never "done" without its money having moved, nor the money moved twice."""

    __tablename__ = "idempotency_records"

    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # HMAC-SHA256 of the request (method, route, body), keyed with the app's secret: the body
    # holds a card number, and a plain hash of a card number is easy to reverse.
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # While in flight: when the claim lapses if its owner died without finishing or releasing it.
    locked_until: Mapped[datetime | None] = mapped_column()
