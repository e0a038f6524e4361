"""Notifications: ask for an email to be sent (by a job, after the request's commit)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.money import format_minor
from app.jobs.models import Job
from app.jobs.queue import JobFailed, enqueue
from app.users.models import User
from app.users.service import get_user
from app.wallet.models import Transaction, TransactionKind

EMAIL_KIND = "notifications.email"


async def request_email(
    session: AsyncSession,
    *,
    requested_by: int,
    subject: str,
    body: str,
    to: str | None = None,
    user_id: int | None = None,
) -> Job:
    """Queue an email to an address or to a user's address; the job is `requested_by`'s."""
    if user_id is not None:
        recipient = await get_user(session, user_id)
        to = recipient.email
    if to is None:
        raise ValueError("an address or a user id is required")
    job = await enqueue(
        session,
        kind=EMAIL_KIND,
        args={"to": to, "subject": subject, "body": body},
        user_id=requested_by,
    )
    await session.commit()
    return job


# Receipt email job ids derive from the ledger row they are about: a receipt job that runs
# again (its worker died after its commit) finds them and queues nothing twice.
RECEIPT_NAMESPACE = uuid.UUID("5b0c4c1e-8d7a-4f5e-9a57-6f1f0e4c2d11")


def receipt_job_id(side_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(RECEIPT_NAMESPACE, f"receipt:{side_id}")


async def queue_payment_receipts(
    session: AsyncSession, transaction_id: str, *, currency: str
) -> list[uuid.UUID]:
    """One receipt email job per side of the payment `transaction_id` belongs to, each owned by
    the user it mails (a payer never sees the payee's address through a job). Idempotent: a side
    whose receipt is already queued is skipped. Returns the receipt jobs' ids."""
    try:
        tx_id = uuid.UUID(transaction_id)
    except ValueError as exc:
        raise JobFailed(f"{transaction_id!r} is not a transaction id") from exc
    transaction = await session.get(Transaction, tx_id)
    if transaction is None:
        raise JobFailed(f"transaction {transaction_id} not found")
    sides = [transaction]
    if transaction.transfer_id is not None:
        sides = list(
            (
                await session.scalars(
                    select(Transaction)
                    .where(Transaction.transfer_id == transaction.transfer_id)
                    .order_by(Transaction.kind.desc())  # payment_sent before payment_received
                )
            ).all()
        )
    user_ids = {side.user_id for side in sides} | {
        side.counterparty_id for side in sides if side.counterparty_id is not None
    }
    users = {
        user.id: user
        for user in (await session.scalars(select(User).where(User.id.in_(user_ids)))).all()
    }
    wanted = {side.id: receipt_job_id(side.id) for side in sides}
    queued = set(
        (await session.scalars(select(Job.id).where(Job.id.in_(list(wanted.values()))))).all()
    )
    for side in sides:
        owner = users.get(side.user_id)
        if owner is None or wanted[side.id] in queued:
            continue
        other = users.get(side.counterparty_id) if side.counterparty_id is not None else None
        await enqueue(
            session,
            kind=EMAIL_KIND,
            args={
                "to": owner.email,
                "subject": _receipt_subject(side, currency),
                "body": _receipt_body(side, other, currency),
            },
            user_id=owner.id,
            job_id=wanted[side.id],
        )
    await session.commit()
    return [wanted[side.id] for side in sides if side.user_id in users]


def _receipt_subject(side: Transaction, currency: str) -> str:
    amount = f"{format_minor(side.amount_minor)} {currency}"
    if side.kind == TransactionKind.PAYMENT_RECEIVED:
        return f"You received {amount}"
    if side.kind == TransactionKind.PAYMENT_SENT:
        return f"You paid {amount}"
    return f"Receipt: {amount}"


def _receipt_body(side: Transaction, other: User | None, currency: str) -> str:
    who = f"{other.name} <{other.email}>" if other is not None else "a former user"
    direction = "from" if side.kind == TransactionKind.PAYMENT_RECEIVED else "to"
    lines = [
        f"{_receipt_subject(side, currency)} {direction} {who}.",
        "",
        f"Amount: {format_minor(side.amount_minor)} {currency}",
        f"Balance after: {format_minor(side.balance_after_minor)} {currency}",
        f"Transaction: {side.id}",
        f"Date: {side.created_at.isoformat()}",
    ]
    if side.description:
        lines.insert(4, f"Description: {side.description}")
    return "\n".join(lines) + "\n"
